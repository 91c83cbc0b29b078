#!/bin/sh
# Start ComfyUI in the foreground on the device COMFYUI_DEVICE names.
#
# One script serves core-cuda and core-cpu without a build arg. COMFYUI_DEVICE=auto (the
# default) asks torch whether CUDA is usable: false for the CPU torch build, and for a CUDA
# image started without a GPU; ComfyUI then needs --cpu, or it fails at start. cpu or cuda
# skips the probe. Extra ComfyUI flags come from COMFYUI_ARGS (split on whitespace) and
# from the container's arguments, in that order.
set -eu

device="${COMFYUI_DEVICE:-auto}"
if [ "$device" = auto ]; then
    if python -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        device=cuda
    else
        device=cpu
    fi
fi

case "$device" in
    cpu) set -- --cpu "$@" ;;
    cuda) ;;
    *)
        echo "comfyui-start: COMFYUI_DEVICE must be auto, cpu or cuda, not '$device'" >&2
        exit 64
        ;;
esac

echo "comfyui-start: ComfyUI ${COMFYUI_VERSION:-(unknown version)} on $device" >&2

# COMFYUI_ARGS is split into words on purpose; globbing stays off so '*' passes through.
set -f
# shellcheck disable=SC2086
exec python /opt/comfyui/main.py \
    --listen "${COMFYUI_LISTEN:-0.0.0.0}" \
    --port "${COMFYUI_PORT:-8188}" \
    --temp-directory /data \
    ${COMFYUI_ARGS:-} \
    "$@"
