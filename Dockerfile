# The try-on service: `tryon serve` on port 50051 (gRPC) and 9095 (Prometheus /metrics).
#   docker build -t tryon .
#   docker run -p 50051:50051 -p 9095:9095 -e TRYON_DATABASE_URL=postgresql://... tryon
FROM python:3.11-slim
WORKDIR /src
# CPU-only torch keeps the image small; the service is built to run on CPU cores.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
        "torch<=2.14.1" "torchvision<=0.29.1"
COPY pyproject.toml README.md ./
COPY proto ./proto
COPY tryon ./tryon
COPY catalog ./catalog
# Refuse to build an image whose stubs do not match the .proto it ships.
RUN pip install --no-cache-dir . && python -m tryon.server.gen_stubs --check
RUN useradd --uid 10001 --no-create-home tryon
USER 10001
WORKDIR /
# MALLOC_ARENA_MAX: glibc gives each thread its own arena otherwise, and resident
# memory grows with the gRPC and decode threads.
ENV TRYON_HOST="[::]" TRYON_PORT=50051 TRYON_METRICS_PORT=9095 \
    PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MALLOC_ARENA_MAX=2
EXPOSE 50051 9095
# SIGTERM drains: NOT_SERVING, TRYON_DRAIN_S of serving, then TRYON_GRACE_S for running calls.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tryon", "serve"]
