# The try-on service image: `tryon serve` on 50051 (gRPC) and 9095 (Prometheus /metrics).
#   docker build -t registry.example.com/tryon/server:0.1.0 .                 # CPU torch
#   docker build --build-arg TORCH_VARIANT=cu124 -t ...:0.1.0-cu124 .          # CUDA torch
#   docker run -p 50051:50051 -p 9095:9095 -e TRYON_DATABASE_URL=postgresql://... IMAGE
# The image holds the installed wheel only (no source tree), the licence-clean
# `synthetic` weights inside it, and never the research-only `viton` weights (the wheel
# excludes them; see docs/deployment.md to mount them where their licence allows).
ARG PYTHON_VERSION=3.11
ARG TORCH_VARIANT=cpu

# --- build: the wheel, its stubs checked against the .proto it ships -----------------
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md constraints.txt ./
COPY proto ./proto
COPY tryon ./tryon
COPY catalog ./catalog
# tryon_client: the client package with the gRPC stubs the server imports (in the wheel).
COPY clients/python ./clients/python
# Refuse to build an image whose stubs do not match the .proto it ships, or whose wheel
# holds the research weights or lacks the synthetic ones.
RUN pip install -c constraints.txt grpcio-tools \
    && python -m tryon.server.gen_stubs --check \
    && pip wheel --no-deps --wheel-dir /wheels . \
    && python -m zipfile -l /wheels/tryon-*.whl > /tmp/contents \
    && ! grep -q "weights/viton/" /tmp/contents \
    && grep -q "weights/synthetic/pipeline.json" /tmp/contents

# --- runtime deps: a virtualenv with torch of the chosen variant, then the pinned rest --
FROM python:${PYTHON_VERSION}-slim AS venv
ARG TORCH_VARIANT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tryon
ENV PATH=/opt/tryon/bin:$PATH
COPY constraints.txt /tmp/constraints.txt
# torch and torchvision from the PyTorch index of the variant (cpu: no CUDA libraries,
# ~700 MB smaller), at the versions constraints.txt pins.
RUN pip install -c /tmp/constraints.txt \
        --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}" torch torchvision
COPY --from=build /wheels /wheels
RUN pip install -c /tmp/constraints.txt /wheels/tryon-*.whl \
    && python -c "from tryon.pipeline import weights_folder; weights_folder('synthetic')" \
    && rm -rf /wheels /tmp/constraints.txt

# --- runtime: the virtualenv and nothing else ---------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --gid 10001 tryon && useradd --uid 10001 --gid 10001 --no-create-home tryon
COPY --from=venv /opt/tryon /opt/tryon
# MALLOC_ARENA_MAX: glibc gives each thread its own arena otherwise, and resident memory
# grows with the gRPC and decode threads. HOME and caches under /tmp: the root file
# system is read-only in Kubernetes.
ENV PATH=/opt/tryon/bin:$PATH \
    TRYON_HOST="[::]" TRYON_PORT=50051 TRYON_METRICS_PORT=9095 \
    TRYON_DATABASE_URL=sqlite:////data/tryon.db \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=2 MALLOC_ARENA_MAX=2 \
    HOME=/tmp XDG_CACHE_HOME=/tmp/.cache
RUN mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /tmp
EXPOSE 50051 9095
# SIGTERM drains: NOT_SERVING, TRYON_DRAIN_S of serving, then TRYON_GRACE_S for running calls.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tryon"]
CMD ["serve"]
