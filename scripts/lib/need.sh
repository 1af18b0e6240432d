# scripts/lib/need.sh — sourced by the check scripts: the one way they get
# the tools they run.

# need WHO TOOL PACKAGE: returns when TOOL is on PATH. When it is missing on
# a system with apt-get (Debian, Ubuntu), installs Debian's PACKAGE as root,
# or through sudo when sudo works without a password. Otherwise (not root,
# no apt-get, or the install failed) exits 2, naming the tool and the
# package that has it, so the user installs it and runs the check again.
need() {
    local who=$1 tool=$2 package=$3 sudo=
    command -v "$tool" >/dev/null 2>&1 && return 0
    if command -v apt-get >/dev/null 2>&1; then
        if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=sudo
        fi
        if [ "$(id -u)" = 0 ] || [ -n "$sudo" ]; then
            echo "$who: $tool not found; installing Debian's $package" >&2
            $sudo apt-get update -qq >/dev/null 2>&1 || true
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null || true
            command -v "$tool" >/dev/null 2>&1 && return 0
        fi
    fi
    echo "$who: $tool is required but missing: install it (Debian/Ubuntu: apt-get install $package) and run again" >&2
    exit 2
}
