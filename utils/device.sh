# Sourced by the shell scripts.
#   script_help "$0" "$@"   --help / -h: print the script's header comment (its usage) and exit 0
#   pick_device GPU         a GPU index -> DEVICE (cuda, with CUDA_VISIBLE_DEVICES set) or cpu, saying so
script_help() {
  local script="$1"; shift
  case "${1:-}" in
    -h|--help)
      sed -n '2,/^[^#]/p' "$script" | sed -n 's/^# \{0,1\}//p'
      exit 0 ;;
  esac
}

pick_device() {
  local gpu="${1:-0}"
  if ! [[ "$gpu" =~ ^[0-9]+$ || "$gpu" == cpu ]]; then
    echo "error: the first argument is the GPU index (a number, or cpu), got '$gpu' (see --help)" >&2
    exit 2
  fi
  if [ "$gpu" != cpu ] && "${PYTHON:-python3}" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    export CUDA_VISIBLE_DEVICES="$gpu"
    DEVICE=cuda
    echo "using GPU $gpu"
  else
    DEVICE=cpu
    echo "no GPU found (asked for GPU $gpu): running on the CPU"
  fi
}
