"""The inference layer: the pipeline on its own thread, dynamic batching and the caches.

A call brings one photo and one or more SKUs. Off the event loop, the photo is hashed,
decoded and its analysis looked up in the cache; the garments come from the catalog
(cached tensors). Each (person, garment) pair is queued; the batch worker analyses the
persons it has not seen (once per photo), refuses persons the models are unsure of, and
dresses the rest in one `try_on` batch. Results are encoded off the loop and handed
back as each is ready.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from catalog.repository import GarmentPage, GarmentSummary
from tryon.data.synth import generate_sample, render_garment
from tryon.errors import InvalidInputError, NoPersonError, NotReadyError
from tryon.imaging import PHOTO_FORMATS, decode_image
from tryon.pipeline import PersonAnalysis, TryOnPipeline
from tryon.provenance import TryOnClaims, load_credentials
from tryon.server.batching import Batched, BatchQueue
from tryon.server.caches import BoundedCache
from tryon.server.errors import InvalidFieldError, LowConfidenceError
from tryon.server.garments import GarmentRefusal, GarmentStore, PreparedGarment
from tryon.server.memory import release_free_memory
from tryon.server.metrics import ServerMetrics
from tryon.server.output import EncodedImage, OutputSpec, encode_result
from tryon.server.settings import ServerSettings

log = logging.getLogger(__name__)
IDLE_TRIM_S = 2.0  # seconds without a batch after which freed memory goes back
# Longest side over shortest: a person's photo is well within it. Framing pads the photo
# to the networks' 4:3 frame, so a 32x16383 WebP of 1 KB took 2 GB and 4 s to frame;
# at 3:1 the padded frame holds at most 4x the photo's pixels.
MAX_ASPECT = 3.0


@dataclass(frozen=True)
class TryOnCall:
    """What one call asks for: photo bytes, SKUs, encoding, and seconds until its deadline;
    `partial`: a garment that cannot be served (unknown, archived, unsupported category)
    comes back as a `GarmentRefused` instead of failing the call."""

    photo: bytes
    skus: list[str]
    output: OutputSpec
    timeout_s: float | None = None
    partial: bool = False


@dataclass(frozen=True)
class GarmentRefused:
    """A garment of a partial call that is not dressed, and the error that says why."""

    sku: str
    error: GarmentRefusal


@dataclass(frozen=True)
class TryOnOutcome:
    """One finished try-on: the encoded image and what the caller should know about it;
    `tryon_id` is the id its watermark and C2PA manifest carry."""

    tryon_id: str
    sku: str
    revision: int
    image: EncodedImage
    model_name: str
    model_version: str
    confidence: float
    timings_ms: dict[str, float]
    batch_size: int
    person_cached: bool


@dataclass
class _Person:
    """A call's photo, decoded, and the compact analysis the cache held for it (if any);
    the batch worker sets `analysis` once (shared by the call's garments)."""

    key: str
    photo: np.ndarray
    compact: PersonAnalysis | None
    decode_ms: float
    analysis: PersonAnalysis | None = None

    @property
    def cached(self) -> bool:
        return self.compact is not None


@dataclass
class _Job:
    person: _Person
    garment: PreparedGarment
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Dressed:
    job: _Job
    image: np.ndarray
    confidence: float
    timings: dict[str, float]


class TryOnEngine:
    """Owns the pipeline, the model thread, the batch queue and the caches.

    Args:
        settings: the server's settings.
        garments: the catalog access.
        metrics: where batch, queue and cache figures go.
        pipeline: an already built pipeline (tests); default: load `settings.weights`.
    """

    def __init__(
        self,
        settings: ServerSettings,
        garments: GarmentStore,
        metrics: ServerMetrics,
        pipeline: TryOnPipeline | None = None,
    ) -> None:
        self.settings = settings
        self.garments = garments
        self.metrics = metrics
        self.pipeline = pipeline
        # Misconfigured signing fails here, before the server listens.
        self.credentials = load_credentials(
            settings.c2pa_cert, settings.c2pa_key, required=settings.c2pa_required
        )
        # One thread runs every model batch, and every torch operation: torch parallelises
        # inside an operation, and batches queue behind each other rather than fighting
        # over the cores. GNU OpenMP lets its workers spin between parallel regions only
        # while it manages no more threads than there are cores: one other thread that ran
        # a torch operation once made every later batch sleep and wake its workers instead,
        # 1.7x slower on 2 cores. Work on other threads (decoding, garment preparation,
        # encoding) therefore uses NumPy, OpenCV and Pillow only.
        # The model thread and its workers run at a lower priority, so that the event loop
        # answers refusals and health checks at once even while both cores compute.
        self.model_thread = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="model",
            initializer=_lower_priority,
            initargs=(settings.model_niceness,),
        )
        self.persons: BoundedCache[PersonAnalysis] = BoundedCache(
            settings.person_cache_entries,
            settings.person_cache_ttl_s,
            weigh=_analysis_bytes,
            max_weight=settings.person_cache_mib * 1024 * 1024,
            on_lookup=metrics.cache_observer("person"),
            on_change=metrics.cache_size_observer("person"),
        )
        self.queue: BatchQueue[_Job, _Dressed] | None = None
        self.ready = False
        self._last_batch = 0.0
        self._trimmer: asyncio.Task | None = None

    # Life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the weights (unless given), run one warm-up batch, start batching."""
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        await loop.run_in_executor(self.model_thread, self._load)
        meta = self.pipeline.meta
        self.metrics.model.info(
            {
                "name": meta.name,
                "version": meta.version,
                "licence": meta.licence,
                "resolution": "x".join(map(str, meta.resolution)),
            }
        )
        if self.settings.warmup:
            await loop.run_in_executor(self.model_thread, self._warm_up)
            self._last_batch = time.monotonic()  # its memory is trimmed once idle too
        self.queue = BatchQueue(
            self._run_batch,
            self.model_thread,
            max_batch=self.settings.max_batch,
            max_wait_s=self.settings.max_wait_ms / 1e3,
            max_queue=self.settings.max_queue,
            retry_after_s=self.settings.retry_after_ms / 1e3,
            max_queue_wait_s=self.settings.max_queue_wait_ms / 1e3 or None,
            on_batch=self.metrics.observe_batch,
            on_depth=self.metrics.queue_depth.set,
        )
        self.queue.start()
        self._trimmer = loop.create_task(self._release_memory_when_idle(), name="trim")
        self.ready = True
        self.metrics.ready.set(1)
        if meta.categories is None:
            log.warning(
                "the weights do not say which garment categories they can dress; every "
                "category is served: add `categories` to their pipeline.json (tryon pack "
                "--categories)",
                extra={"fields": {"weights": meta.name}},
            )
        if self.credentials is None:
            log.warning(
                "try-ons are watermarked but not C2PA-signed: set TRYON_C2PA_CERT and "
                "TRYON_C2PA_KEY, and TRYON_C2PA_REQUIRED=1 in production"
            )
        log.info(
            "models ready",
            extra={
                "fields": {
                    "weights": meta.name,
                    "version": meta.version,
                    "licence": meta.licence,
                    "precision": self.pipeline.precision_name,
                    "parser_runtime": self.pipeline.parser_runtime_name,
                    "categories": "all" if meta.categories is None else list(meta.categories),
                    "seconds": round(time.perf_counter() - started, 2),
                }
            },
        )

    async def close(self) -> None:
        """Finish every accepted try-on, then release the model thread."""
        self.ready = False
        self.metrics.ready.set(0)
        if self.queue is not None:
            await self.queue.close()
        if self._trimmer is not None:
            self._trimmer.cancel()
            await asyncio.gather(self._trimmer, return_exceptions=True)
        self.model_thread.shutdown(wait=True)

    def _load(self) -> None:
        if self.settings.workers:
            torch.set_num_threads(self.settings.workers)
        if self.pipeline is None:
            self.pipeline = TryOnPipeline.from_pretrained(
                self.settings.weights,
                device=self.settings.device,
                precision=self.settings.precision,
                parser_runtime=self.settings.parser_runtime,
            )

    def _warm_up(self) -> None:
        """One full-size batch on a generated shopper, so the first caller does not pay
        for first-run allocations; and the parser run once at each framing size of the
        common photo shapes (`TryOnPipeline.warm_up_parser`)."""
        size = self.pipeline.size
        self.pipeline.warm_up_parser()
        analysis = self.pipeline.analyse_person(generate_sample(0, 0, size).person)
        image, mask = render_garment(0, 0, size)
        garments, masks = self.pipeline.prepare_garments([image], [mask])
        count = self.settings.max_batch
        self.pipeline.try_on(
            [analysis] * count, garments.expand(count, -1, -1, -1), masks.expand(count, -1, -1, -1)
        )

    async def _release_memory_when_idle(self) -> None:
        """Once batches stop for IDLE_TRIM_S, hand the freed batch memory back to the
        system. Not after every batch: re-faulting those pages costs ~15 ms a call. Also
        drops the person cache's expired entries every IDLE_TRIM_S."""
        trimmed_after = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(IDLE_TRIM_S)
            # Expired analyses leave memory within seconds, not when next looked up.
            self.persons.purge_expired()
            idle = time.monotonic() - self._last_batch >= IDLE_TRIM_S
            if idle and self._last_batch > trimmed_after and self.queue.depth == 0:
                trimmed_after = self._last_batch
                await loop.run_in_executor(self.model_thread, release_free_memory)

    # Calls -----------------------------------------------------------------------------
    @property
    def supported_categories(self) -> tuple[str, ...] | None:
        """The garment categories the serving weights can dress; None: all (undeclared)."""
        return self.pipeline.meta.categories

    async def try_on(self, call: TryOnCall) -> AsyncIterator[TryOnOutcome | GarmentRefused]:
        """Dress the person in `call.photo` in each garment; yield results as they finish
        (in a partial call, refused garments first).

        Each garment counts in `try_ons_in_progress` from now until its result is handed
        over (or the call ends)."""
        self._check_ready()
        self.queue.check_room(len(call.skus))
        unanswered = len(call.skus)
        self.metrics.try_ons_in_progress.inc(unanswered)
        futures: list[asyncio.Future] = []
        try:
            with self.queue.coming(len(call.skus)):  # a batch being collected waits for us
                person, (garments, catalog_ms) = await asyncio.gather(
                    asyncio.to_thread(self._person, call.photo),
                    asyncio.to_thread(
                        self.garments.fetch,
                        call.skus,
                        self.pipeline.prepare_garments,
                        self.supported_categories,
                        partial=call.partial,
                    ),
                )
                refused = [
                    GarmentRefused(sku, garment)
                    for sku, garment in zip(call.skus, garments, strict=True)
                    if not isinstance(garment, PreparedGarment)
                ]
                jobs = [_Job(person, g) for g in garments if isinstance(g, PreparedGarment)]
                futures = self.queue.submit(jobs, call.timeout_s) if jobs else []
            for garment_refused in refused:
                unanswered -= 1
                self.metrics.try_ons_in_progress.dec()
                yield garment_refused
            for finished in asyncio.as_completed(futures):
                batched = await finished
                timings = {
                    "decode": person.decode_ms,
                    "catalog": catalog_ms,
                    "queue": batched.queue_s * 1e3,
                    **batched.value.timings,
                }
                outcome = await asyncio.to_thread(self._finish, batched, timings, call.output)
                unanswered -= 1
                self.metrics.try_ons_in_progress.dec()
                yield outcome
        finally:
            self.metrics.try_ons_in_progress.dec(unanswered)
            for future in futures:
                future.cancel()  # the caller left or one failed: drop what has not run

    async def list_garments(
        self, page_size: int, page_token: str | None, supported_only: bool = False
    ) -> GarmentPage:
        """One page of active garments; with `supported_only`, of the categories the
        weights can dress only."""
        self._check_ready()
        supported = self.supported_categories if supported_only else None
        return await asyncio.to_thread(self.garments.page, page_size, page_token, supported)

    async def get_garment(self, sku: str) -> GarmentSummary:
        """The active garment `sku` (GarmentNotFoundError if none)."""
        self._check_ready()
        return await asyncio.to_thread(self.garments.get, sku)

    def _check_ready(self) -> None:
        if not self.ready:
            raise NotReadyError("the service is warming up; retry in a few seconds")

    def _person(self, photo: bytes) -> _Person:
        """Decode the photo (paste-back needs its pixels) and look up its analysis in the
        cache, which keeps a compact copy without the photo (the caller sends it again)."""
        key = hashlib.sha256(photo).hexdigest()
        start = time.perf_counter()
        try:
            pixels = decode_image(photo, max_pixels=self.settings.max_pixels, formats=PHOTO_FORMATS)
            self.pipeline.check_photo(pixels)
            height, width = pixels.shape[:2]
            if max(height, width) > MAX_ASPECT * min(height, width):
                raise InvalidInputError(
                    f"photo is {width}x{height} pixels, more than {MAX_ASPECT:.0f} times as "
                    "long as it is wide; send a photo of one person, upper body visible"
                )
        except InvalidInputError as error:
            raise InvalidFieldError("person_image", str(error)) from None
        decode_ms = (time.perf_counter() - start) * 1e3
        return _Person(key, pixels, self.persons.get(key), decode_ms)

    def _finish(
        self, batched: Batched[_Dressed], timings: dict[str, float], output: OutputSpec
    ) -> TryOnOutcome:
        job = batched.value.job
        start = time.perf_counter()
        meta = self.pipeline.meta
        claims = TryOnClaims(str(uuid.uuid4()), meta.name, meta.version)
        image = encode_result(
            batched.value.image,
            output,
            f"virtual try-on, weights {meta.name} {meta.version}",
            claims,
            self.credentials,
        )
        timings["encode"] = (time.perf_counter() - start) * 1e3
        return TryOnOutcome(
            tryon_id=claims.tryon_id,
            sku=job.garment.sku,
            revision=job.garment.revision,
            image=image,
            model_name=meta.name,
            model_version=meta.version,
            confidence=batched.value.confidence,
            timings_ms=timings,
            batch_size=batched.batch_size,
            person_cached=job.person.cached,
        )

    # The batch worker (model thread) ---------------------------------------------------
    def _run_batch(self, jobs: list[_Job]) -> Sequence[_Dressed | BaseException]:
        """Analyse unseen persons, refuse unsure ones, dress the rest in one batch."""
        results: list[_Dressed | BaseException | None] = [None] * len(jobs)
        accepted = []
        for index, job in enumerate(jobs):
            try:
                analysis = self._analysis(job.person)
            except Exception as error:  # this photo's problem, not the batch's
                results[index] = error
                continue
            refusal = self._refusal(analysis)
            if refusal is not None:
                results[index] = refusal
            else:
                accepted.append((index, analysis))
        if accepted:
            garments = torch.cat([jobs[i].garment.image for i, _ in accepted])
            masks = torch.cat([jobs[i].garment.mask for i, _ in accepted])
            dressed = self.pipeline.try_on([a for _, a in accepted], garments, masks)
            for (index, analysis), result in zip(accepted, dressed, strict=True):
                timings = dict(result.timings)
                if jobs[index].person.cached:  # the analysis was not this call's work
                    for stage in analysis.timings:
                        timings.pop(stage, None)
                results[index] = _Dressed(jobs[index], result.image, result.confidence, timings)
        self._last_batch = time.monotonic()
        return results

    def _analysis(self, person: _Person) -> PersonAnalysis:
        """The person's analysis: the cached one made whole, or a new one (then cached)."""
        if person.analysis is None:
            if person.compact is not None:
                person.analysis = person.compact.restore(person.photo)
            else:
                person.analysis = self.pipeline.analyse_person(person.photo)
                if self.settings.person_cache_entries > 0:  # 0: the cache is off
                    self.persons.put(person.key, person.analysis.for_cache())
        return person.analysis

    def _refusal(self, analysis: PersonAnalysis) -> NoPersonError | None:
        threshold = self.settings.min_confidence
        if analysis.confidence <= 0:
            return NoPersonError(
                f"cannot dress this photo: {analysis.reason or 'no person found'}; send a "
                "photo of one person, facing the camera, upper body visible"
            )
        if analysis.confidence >= threshold:
            return None
        why = analysis.reason or "the person is not clearly visible"
        return LowConfidenceError(
            f"cannot dress this photo: {why} (confidence {analysis.confidence:.2f}, the "
            f"service needs {threshold:.2f}); send a photo of one person, facing the "
            "camera, shoulders and upper body visible"
        )


def _analysis_bytes(analysis: PersonAnalysis) -> int:
    """What a cached (compact: no photo, no representation) analysis holds."""
    tensors = [analysis.person, analysis.parse, analysis.keypoints]
    return sum(t.numel() * t.element_size() for t in tensors)


def _lower_priority(niceness: int) -> None:
    """Run this thread, and the torch worker threads it starts, `niceness` steps below
    the rest of the process (Linux schedules threads one by one; 19 is the floor). Where
    that cannot be done, say so and run as the rest."""
    if not niceness:
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + niceness))
    except (AttributeError, OSError) as error:  # not Linux, or not allowed
        log.warning(
            "the model thread runs at the server's priority (TRYON_MODEL_NICENESS not applied)",
            extra={"fields": {"error": str(error)}},
        )
