# Sourced by the GPU scripts (gpu_*.sh), from the repository root: makes `tryon` runnable
# on a lent GPU machine, whose image has PyTorch but not segmentation-models-pytorch or
# kornia (carried as wheels in .whl/, see docs/training.md), and prints what it found.
# Exits when the imports fail.
if ! python3 -c "import kornia, segmentation_models_pytorch" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD
tryon() { python3 -c 'import sys; from tryon.cli import main; main(sys.argv[1:])' "$@"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo "no GPU"
python3 -c 'import torch, kornia, segmentation_models_pytorch as smp; print("torch", torch.__version__, "kornia", kornia.__version__, "smp", smp.__version__, "cuda", torch.cuda.is_available())' || exit 1
