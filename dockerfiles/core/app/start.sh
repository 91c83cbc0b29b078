#!/bin/sh
# Start ComfyUI in the foreground (exec: tini's signals, STOPSIGNAL SIGINT, reach it).
#
# One script serves core-cuda and core-cpu without a build arg. COMFYUI_DEVICE=auto (the
# default) asks torch whether CUDA is usable: false for the CPU torch build, and for a CUDA
# image started without a GPU; ComfyUI then needs --cpu, or it fails at start. cpu or cuda
# skips the probe. A probe that fails or finds no device says so in the log, with torch's
# own message: a GPU host that silently runs on CPU is hard to diagnose.
#
# Flags added from the environment and /data: --enable-manager (COMFYUI_ENABLE_MANAGER: auto,
# the default, when the source ships manager_requirements.txt; 1; 0), and
# --extra-model-paths-config /data/extra_model_paths.yaml when that file exists. Then extra
# ComfyUI flags from COMFYUI_ARGS (split on whitespace) and the container's arguments, in
# that order. COMFYUI_DATA_DIR and COMFYUI_PATH are overridable for tests on a host only.
set -eu

data_dir="${COMFYUI_DATA_DIR:-/data}"
comfyui_path="${COMFYUI_PATH:-/opt/comfyui}"

log() {
    echo "comfyui-start: $*" >&2
}

device="${COMFYUI_DEVICE:-auto}"
if [ "$device" = auto ]; then
    status=0
    probe="$(python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)' 2>&1)" ||
        status=$?
    case "$status" in
        0) device=cuda ;;
        3)
            device=cpu
            log "torch sees no usable CUDA device; starting on CPU${probe:+. torch said: $probe}"
            ;;
        *)
            device=cpu
            log "WARNING: the GPU probe failed (exit $status); starting on CPU. Output: $probe"
            ;;
    esac
fi

case "$device" in
    cpu) set -- --cpu "$@" ;;
    cuda) ;;
    *)
        log "COMFYUI_DEVICE must be auto, cpu or cuda, not '$device'"
        exit 64
        ;;
esac

case "${COMFYUI_ENABLE_MANAGER:-auto}" in
    auto)
        if [ -f "$comfyui_path/manager_requirements.txt" ]; then
            set -- --enable-manager "$@"
        fi
        ;;
    1 | true) set -- --enable-manager "$@" ;;
    0 | false) ;;
    *)
        log "COMFYUI_ENABLE_MANAGER must be auto, 1 or 0, not '${COMFYUI_ENABLE_MANAGER}'"
        exit 64
        ;;
esac

if [ -f "$data_dir/extra_model_paths.yaml" ]; then
    set -- --extra-model-paths-config "$data_dir/extra_model_paths.yaml" "$@"
fi

log "ComfyUI ${COMFYUI_VERSION:-(unknown version)} on $device"

# COMFYUI_ARGS is split into words on purpose; globbing stays off so '*' passes through.
set -f
# shellcheck disable=SC2086
exec python "$comfyui_path/main.py" \
    --listen "${COMFYUI_LISTEN:-0.0.0.0}" \
    --port "${COMFYUI_PORT:-8188}" \
    --temp-directory "$data_dir" \
    ${COMFYUI_ARGS:-} \
    "$@"
