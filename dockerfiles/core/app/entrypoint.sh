#!/bin/sh
# Container entrypoint, run under tini: make /data usable, then start ComfyUI (comfyui-start)
# or run the command given.
#
# Arguments: none, or a first one starting with '-', go to ComfyUI; any other first argument
# is a command, run after the same preparation (`docker run <image> bash`).
#
# Users: started as root (`--user 0`), it hands /data's top-level folders (not their
# contents: a models library can be huge) and all of /data/venv to PUID:PGID (default
# 10001, the image's user) and drops to it with setpriv. PUID=0 keeps root. Started as any
# other uid (the image's 10001, or an arbitrary OpenShift uid with gid 0), it runs as that.
#
# /data: ComfyUI's models/, input/, output/, user/ and custom_nodes/ are symlinks into it
# (core Dockerfile, final setup); temp/ is passed with --temp-directory. A fresh volume is
# seeded from /opt/comfyui-defaults; existing files are never overwritten. What is not
# writable (a read-only or foreign-owned volume, a read-only models mount) is warned about
# and skipped: ComfyUI still starts. /data/venv holds custom-node dependencies (see below).
#
# Hook: /data/pre-start.sh (or the file COMFYUI_PRE_START names) runs before ComfyUI, as the
# final user, with the venv on PATH; if it fails, ComfyUI is not started.
#
# The COMFYUI_*_DIR / COMFYUI_START / COMFYUI_BASE_PYTHON overrides exist so tests can run
# this script on a host; in the image the defaults are the only values that match the
# symlinks and ENV of the Dockerfile.
set -eu

data_dir="${COMFYUI_DATA_DIR:-/data}"
defaults_dir="${COMFYUI_DEFAULTS_DIR:-/opt/comfyui-defaults}"
start="${COMFYUI_START:-/usr/local/bin/comfyui-start}"
base_python="${COMFYUI_BASE_PYTHON:-/opt/venv/bin/python}"
venv="$data_dir/venv" # VIRTUAL_ENV and the head of PATH in the core Dockerfile
image_uid=10001

log() {
    echo "comfyui-entrypoint: $*" >&2
}

owner() {
    stat -c %u:%g "$1" 2>/dev/null || echo unknown
}

# --- root: hand /data over and drop privileges --------------------------------------------

if [ "$(id -u)" = 0 ] && [ "${PUID:-}" != 0 ]; then
    uid="${PUID:-$image_uid}"
    gid="${PGID:-$uid}"
    case "$uid" in '' | *[!0-9]*) log "PUID must be a number, not '$uid'" && exit 64 ;; esac
    case "$gid" in '' | *[!0-9]*) log "PGID must be a number, not '$gid'" && exit 64 ;; esac
    for dir in "$data_dir" "$data_dir"/*/; do
        dir="${dir%/}"
        [ -d "$dir" ] || continue
        [ "$(owner "$dir")" = "$uid:$gid" ] && continue
        chown "$uid:$gid" "$dir" 2>/dev/null ||
            log "WARNING: cannot hand $dir (owner $(owner "$dir")) to $uid:$gid (read-only?)"
    done
    # The venv is the entrypoint's own and useless to another uid: all of it changes hands.
    if [ -d "$venv" ] && [ -n "$(find "$venv" ! -user "$uid" -print -quit 2>/dev/null)" ]; then
        chown -R "$uid:$gid" "$venv" 2>/dev/null || log "WARNING: cannot hand $venv to $uid:$gid"
    fi
    log "dropping root for uid $uid gid $gid"
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$0" "$@"
fi
if [ "$(id -u)" = 0 ]; then
    log "WARNING: PUID=0: running ComfyUI as root"
fi

# An arbitrary uid has no passwd entry and no home: Python's getpass (torch's compile
# cache) needs a user name, git and pip a writable HOME.
if ! id -un >/dev/null 2>&1; then
    USER="uid$(id -u)"
    LOGNAME="$USER"
    export USER LOGNAME
fi
if [ -z "${HOME:-}" ] || [ ! -w "$HOME" ]; then
    export HOME="$data_dir/home"
    mkdir -p "$HOME" 2>/dev/null || export HOME=/tmp
fi

# --- /data ----------------------------------------------------------------------------------

if [ ! -w "$data_dir" ]; then
    log "WARNING: $data_dir is not writable by uid $(id -u) gid $(id -g) (owner $(owner "$data_dir"))." \
        "Continuing without seeding it or installing there; ComfyUI cannot save outputs." \
        "Mount a volume this uid can write, or start as root (--user 0) with PUID/PGID."
fi

# mkdir -p that warns instead of stopping the container.
ensure_dir() {
    [ -d "$1" ] && return 0
    mkdir -p "$1" 2>/dev/null && return 0
    log "WARNING: cannot create $1"
    return 1
}

# Copy what ComfyUI ships in $defaults_dir/$1 into $data_dir/$1, never overwriting.
seed() {
    target="$data_dir/$1"
    ensure_dir "$target" || return 0
    if [ ! -w "$target" ]; then
        log "WARNING: $target is read-only for uid $(id -u) (owner $(owner "$target")): not seeded"
        return 0
    fi
    (
        cd "$defaults_dir/$1"
        find . -type d | while IFS= read -r dir; do
            mkdir -p "$target/$dir" 2>/dev/null || log "WARNING: cannot create $target/$dir"
        done
        find . -type f | while IFS= read -r file; do
            [ -e "$target/$file" ] || cp "$file" "$target/$file" 2>/dev/null ||
                log "WARNING: cannot seed $target/$file"
        done
    )
}

if [ -w "$data_dir" ]; then
    for dir in models input output user temp custom_nodes cache; do
        ensure_dir "$data_dir/$dir" || true
    done
fi
if [ -d "$defaults_dir" ]; then
    for dir in "$defaults_dir"/*/; do
        [ -d "$dir" ] || continue
        dir="${dir%/}"
        seed "${dir##*/}"
    done
fi

# --- /data/venv: custom-node dependencies on the volume -------------------------------------
# A venv made from /opt/venv's interpreter does not see /opt/venv's packages
# (--system-site-packages would add only the OS interpreter's), so a .pth file appends
# /opt/venv's site-packages after the venv's own. pip and uv install into /data/venv, see
# torch and ComfyUI's requirements as installed, and keep the torch pins of
# /opt/venv/constraints.txt (PIP_CONSTRAINT, UV_CONSTRAINT). A venv of another Python version
# (after an image upgrade) cannot load its packages: it is set aside and made anew.

python_version() {
    "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}

make_venv() {
    want="$(python_version "$base_python")" || return 1
    if [ -e "$venv" ] && [ "$(python_version "$venv/bin/python" || true)" != "$want" ]; then
        aside="$venv.before-python$want-$(date +%Y%m%d%H%M%S)"
        log "WARNING: $venv is not a Python $want environment; moved to $aside." \
            "Reinstall custom-node dependencies (ComfyUI-Manager: 'Try fix')."
        mv "$venv" "$aside" || return 1
    fi
    if [ ! -e "$venv" ]; then
        log "creating $venv on top of $(dirname "$(dirname "$base_python")")"
        "$base_python" -m venv "$venv" >&2 || return 1
    fi
    site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" ||
        return 1
    base_site="$("$base_python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" ||
        return 1
    if [ "$(cat "$site/_comfyui_base.pth" 2>/dev/null || true)" != "$base_site" ]; then
        echo "$base_site" >"$site/_comfyui_base.pth" || return 1
    fi
}

if [ ! -x "$base_python" ]; then
    log "WARNING: $base_python not found; no $venv"
elif [ ! -w "$data_dir" ] && [ ! -w "$venv" ]; then
    log "WARNING: $venv unavailable ($data_dir not writable); pip installs will fail"
elif ! make_venv; then
    log "WARNING: could not prepare $venv; pip installs go nowhere persistent"
fi
if [ ! -x "$venv/bin/python" ]; then
    export VIRTUAL_ENV="${base_python%/bin/python}"
fi

# --- a command, or ComfyUI -------------------------------------------------------------------

if [ $# -gt 0 ]; then
    case "$1" in
        -*) ;;
        *) exec "$@" ;;
    esac
fi

hook="${COMFYUI_PRE_START:-$data_dir/pre-start.sh}"
if [ -n "${COMFYUI_PRE_START:-}" ] && [ ! -f "$hook" ]; then
    log "COMFYUI_PRE_START=$hook: no such file; not starting ComfyUI"
    exit 66
fi
if [ -f "$hook" ]; then
    log "running pre-start hook $hook"
    status=0
    if [ -x "$hook" ]; then
        "$hook" || status=$?
    else
        sh "$hook" || status=$?
    fi
    if [ "$status" != 0 ]; then
        log "pre-start hook $hook failed (exit $status); not starting ComfyUI"
        exit "$status"
    fi
fi

exec "$start" "$@"
