#!/bin/sh
# Start ComfyUI in the foreground (exec: tini's signals, STOPSIGNAL SIGINT, reach it).
#
# One script serves every core (cuda, rocm, xpu, cpu) without a build arg. COMFYUI_DEVICE=auto
# (the default) asks torch which accelerator it is built for (torch.version.hip: rocm;
# torch.xpu: xpu; torch.version.cuda: cuda) and whether a device of it is usable, and logs
# the answer with the device's name. No usable device (the CPU build, a GPU image started
# without its devices) means ComfyUI needs --cpu, or it fails at start. cpu, cuda, rocm or
# xpu skips the probe. A probe that fails or finds no device says so in the log, with
# torch's own message: a GPU host that silently runs on CPU is hard to diagnose.
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

# The probe prints "accelerator: <kind> <device name>" (or "accelerator: none" for a CPU
# build) and exits 0 when the device is usable, 3 when not; anything else is torch's.
PROBE='import sys, torch
hip = getattr(torch.version, "hip", None)
xpu = getattr(torch, "xpu", None)
if hip:
    kind, api = "rocm", torch.cuda
elif getattr(xpu, "_is_compiled", lambda: False)():
    kind, api = "xpu", xpu
elif torch.version.cuda:
    kind, api = "cuda", torch.cuda
else:
    print("accelerator: none")
    sys.exit(3)
usable = api.is_available()
print("accelerator:", kind, api.get_device_name(0) if usable else "(no device)")
sys.exit(0 if usable else 3)'

device="${COMFYUI_DEVICE:-auto}"
if [ "$device" = auto ]; then
    status=0
    probe="$(python -c "$PROBE" 2>&1)" || status=$?
    found="$(printf '%s\n' "$probe" | sed -n 's/^accelerator: //p' | head -n 1)"
    said="$(printf '%s\n' "$probe" | grep -v '^accelerator: ' || true)"
    kind="${found%% *}"
    case "$status:$kind" in
        0:cuda | 0:rocm | 0:xpu)
            device="$kind"
            log "torch finds a usable $kind device: ${found#* }"
            ;;
        3:none)
            device=cpu
            log "torch is a CPU build; starting on CPU"
            ;;
        3:?*)
            device=cpu
            log "torch (a $kind build) sees no usable $kind device; starting on CPU${said:+. torch said: $said}"
            ;;
        *)
            device=cpu
            log "WARNING: the GPU probe failed (exit $status); starting on CPU. Output: $probe"
            ;;
    esac
fi

case "$device" in
    cpu) set -- --cpu "$@" ;;
    # ComfyUI finds ROCm's devices through torch.cuda and XPU's through torch.xpu itself.
    cuda | rocm | xpu) ;;
    *)
        log "COMFYUI_DEVICE must be auto, cpu, cuda, rocm or xpu, not '$device'"
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
