# Sourced by the scripts that build test tools from their Go modules: `go_tool` builds one into
# the tools' cache outside the clone, keyed by version, and links it into the validators'
# directory. The caller sets `cache` (the tools' cache), `bin_dir` (the validators' directory) and
# `go_tool_log` (its name, for the lines it prints). Nothing built is committed.
# shellcheck shell=bash disable=SC2154

need_go() {
    command -v go >/dev/null || { echo "$go_tool_log: $1 is built from its Go module and needs Go: apt-get install golang, or see https://go.dev/doc/install" >&2; return 1; }
}

# go_tool NAME KEY MODULE PACKAGE VERSION [BUILD FLAGS...]: builds PACKAGE (of MODULE at vVERSION,
# static, with the build flags, e.g. -ldflags) into <cache>/KEY-vVERSION/NAME unless it is there,
# and links it into the validators' directory as NAME. When `go install` refuses the module
# (replace lines in its go.mod), it is built from a small wrapper module instead.
go_tool() {
    local name="$1" key="$2" module="$3" package="$4" version="$5" dir start work status=0
    shift 5
    dir="$cache/$key-v$version"
    if [ ! -x "$dir/$name" ]; then
        need_go "$name" || return 1
        echo "$go_tool_log: building $name $version from $module" >&2
        start=$SECONDS
        mkdir -p "$dir"
        if ! GOBIN="$dir" CGO_ENABLED=0 nice go install -trimpath "$@" "$package@v$version" 2>"$dir/build.log"; then
            if grep -q 'replace directives' "$dir/build.log"; then
                echo "$go_tool_log: $module has replace lines; building $name from a wrapper module" >&2
                work="$(mktemp -d)"
                (
                    cd "$work" &&
                        go mod init wrapper >/dev/null 2>&1 &&
                        go get "$module@v$version" 2>>"$dir/build.log" &&
                        CGO_ENABLED=0 nice go build -trimpath "$@" -o "$dir/$name" "$package" 2>>"$dir/build.log"
                ) || status=$?
                rm -rf "$work"
            else
                status=1
            fi
            if [ "$status" -ne 0 ]; then
                cat "$dir/build.log" >&2
                rm -rf "$dir"
                echo "$go_tool_log: building $name $version failed" >&2
                return 1
            fi
        fi
        rm -f "$dir/build.log"
        # go install names the binary after the package's last element.
        [ -x "$dir/$name" ] || mv "$dir/$(basename "$package")" "$dir/$name"
        echo "$go_tool_log: built $name in $((SECONDS - start)) s ($(du -h "$dir/$name" | cut -f1))" >&2
    fi
    ln -sf "$dir/$name" "$bin_dir/$name"
}
