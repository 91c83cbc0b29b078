#!/bin/sh
# Container entrypoint, run under tini as the unprivileged user: make /data usable, then
# hand over to comfyui-start (the container's arguments go to ComfyUI).
#
# /data is the only writable place. ComfyUI's models/, input/, output/ and user/ are
# symlinks into it (core Dockerfile, final setup); temp/ is passed with --temp-directory.
# A fresh volume is seeded with what ComfyUI ships there (the model folder layout and
# its configs) from /opt/comfyui-defaults; existing files are never overwritten.
set -eu

data_dir=/data
defaults_dir=/opt/comfyui-defaults

if [ ! -w "$data_dir" ]; then
    echo "comfyui-entrypoint: $data_dir is not writable by uid $(id -u)." \
        "Mount a volume owned by $(id -u):$(id -g), or run with --user set to its owner." >&2
    exit 1
fi

for dir in models input output user temp; do
    mkdir -p "$data_dir/$dir"
done

if [ -d "$defaults_dir" ]; then
    (
        cd "$defaults_dir"
        find . -type d | while IFS= read -r dir; do
            mkdir -p "$data_dir/$dir"
        done
        find . -type f | while IFS= read -r file; do
            [ -e "$data_dir/$file" ] || cp "$file" "$data_dir/$file"
        done
    )
fi

exec /usr/local/bin/comfyui-start "$@"
