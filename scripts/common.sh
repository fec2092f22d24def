# Sourced by the scripts: how to run PostgreSQL programs and where to build.
#
# PostgreSQL refuses to run as root, and a clone in root's home (mode 0700) is
# unreadable to other users. So as root, servers, pg_regress and prove run as
# the unprivileged "postgres" user from a staging copy that it owns; as any other
# user everything runs in place.

MR_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MR_PGBIN=$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)

if [ "$(id -u)" -eq 0 ]; then
    MR_RUNAS=(runuser -u postgres --)
    MR_SUDO=()
else
    MR_RUNAS=()
    MR_SUDO=(sudo)
fi

# Build and install the extension (installing needs root or sudo).
mr_build_install() {
    make -C "$1" -j2 -s >/dev/null
    "${MR_SUDO[@]}" make -C "$1" -s install >/dev/null
}

# Copy the tree to a directory the test user can read and write; prints its path.
# One directory per source tree (DEST-<hash of its path>): object files stay between
# runs, and make trusts modification times, so a file staged from another checkout
# with an older time than the object built from a third one would be silently kept.
mr_stage() {
    local dest
    if [ "$(id -u)" -ne 0 ]; then echo "$MR_TOP"; return; fi
    dest="$1-$(printf '%s' "$MR_TOP" | md5sum | cut -c1-8)"
    mkdir -p "$dest"
    rsync -a --delete --exclude .git --exclude build --exclude tmp_check \
        --exclude "*.o" --exclude "*.so" --exclude "*.d" --exclude "*.bc" \
        --exclude results "$MR_TOP"/ "$dest"/
    chown -R postgres: "$dest"
    echo "$dest"
}
