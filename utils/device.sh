# Sourced by the shell scripts: turn a GPU index ($1 of the script) into DEVICE for the Python entry points.
# With no GPU, say so and use the CPU.
pick_device() {
  local gpu="${1:-0}"
  if "${PYTHON:-python3}" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    export CUDA_VISIBLE_DEVICES="$gpu"
    DEVICE=cuda
    echo "using GPU $gpu"
  else
    DEVICE=cpu
    echo "no GPU found (asked for GPU $gpu): running on the CPU"
  fi
}
