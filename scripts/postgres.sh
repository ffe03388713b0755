#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests: Debian's server binaries, a private data directory and port.
#
#   scripts/postgres.sh start DIR PORT   initdb DIR if needed, start the server on 127.0.0.1:PORT (or reuse
#                                        the one already running on DIR), create the database grader_test,
#                                        and print its SQLAlchemy URL as the last line of stdout
#   scripts/postgres.sh stop DIR         stop the server on DIR if it runs, then remove DIR
#
# Trust authentication, no fsync: for tests only, never for data anyone keeps. As root, the server runs as
# the `postgres` user (PostgreSQL refuses to run as root); otherwise as the caller. The superuser role is
# `postgres` either way.
set -euo pipefail

DATABASE=grader_test
SUPERUSER=postgres

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

usage() {
    die "usage: $0 start DIR PORT | $0 stop DIR"
}

is_root() {
    [[ $(id -u) -eq 0 ]]
}

# Runs a command as the owner of the cluster, from a directory that owner can read.
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

find_bin() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $dir && -x $dir/pg_ctl && -x $dir/initdb && -x $dir/postgres ]]; then
        echo "$dir"
    fi
}

ensure_bin() {
    BIN=$(find_bin)
    if [[ -z $BIN ]]; then
        if ! is_root; then
            die "no PostgreSQL server under /usr/lib/postgresql/*/bin; install it: sudo apt-get install -y postgresql"
        fi
        echo "postgres.sh: installing Debian's PostgreSQL (apt-get install postgresql)" >&2
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
        BIN=$(find_bin)
        [[ -n $BIN ]] || die "apt-get installed postgresql, but no server binaries under /usr/lib/postgresql/*/bin"
    fi
    if is_root; then
        id -u postgres >/dev/null 2>&1 || die "running as root, but there is no 'postgres' user to run the server"
    fi
}

absolute() {
    case $1 in
        /*) echo "$1" ;;
        *) echo "$PWD/$1" ;;
    esac
}

is_running() {
    [[ -f $1/postmaster.pid ]] && as_owner "$BIN/pg_ctl" -D "$1" status >/dev/null 2>&1
}

start() {
    local dir port running_port
    dir=$(absolute "$1")
    port=$2
    [[ $port =~ ^[0-9]+$ ]] || die "PORT must be a number, not '$port'"
    # The socket lives in DIR: its path (DIR/.s.PGSQL.PORT) must fit in a Unix socket address.
    ((${#dir} + 18 <= 107)) || die "DIR is too long for a Unix socket path: $dir (use a short path under /tmp)"
    ensure_bin

    # Clear the caller's libpq settings so that psql below talks to this server only.
    unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGSERVICE PGOPTIONS PGDATA

    if is_running "$dir"; then
        # Line 4 of postmaster.pid is the port the running server listens on.
        running_port=$(sed -n 4p "$dir/postmaster.pid")
        if [[ $running_port != "$port" ]]; then
            echo "postgres.sh: reusing the server already running on $dir, on port $running_port" >&2
            port=$running_port
        fi
    else
        mkdir -p "$dir"
        if is_root; then
            chown postgres: "$dir"
            as_owner test -w "$dir" || die "the postgres user cannot reach $dir (a parent directory is closed)"
        fi
        chmod 700 "$dir"
        if [[ ! -f $dir/PG_VERSION ]]; then
            [[ -z $(ls -A "$dir") ]] || die "$dir is neither empty nor a PostgreSQL data directory"
            local output
            output=$(as_owner "$BIN/initdb" -D "$dir" -U "$SUPERUSER" --auth=trust -E UTF8 --no-locale \
                --no-sync --no-instructions 2>&1) || { echo "$output" >&2; die "initdb failed on $dir"; }
        fi
        local options="-p $port -k $dir -c listen_addresses=127.0.0.1"
        options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        as_owner "$BIN/pg_ctl" -D "$dir" -l "$dir/log" -w -t 30 -o "$options" start >/dev/null ||
            { tail -n 20 "$dir/log" >&2 || true; die "the server on $dir did not start (port $port taken?)"; }
    fi

    local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U "$SUPERUSER" -d postgres)
    if [[ -z $(as_owner "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'") ]]; then
        as_owner "${psql[@]}" -c "CREATE DATABASE $DATABASE OWNER $SUPERUSER" >/dev/null
    fi
    echo "postgresql+psycopg://$SUPERUSER@127.0.0.1:$port/$DATABASE"
}

stop() {
    local dir
    dir=$(absolute "$1")
    [[ -e $dir ]] || return 0
    if [[ -f $dir/postmaster.pid ]]; then
        ensure_bin
        if is_running "$dir"; then
            as_owner "$BIN/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null
        fi
    fi
    # Remove DIR only when it is what start made: a data directory, or still empty.
    if [[ -f $dir/PG_VERSION || -z $(ls -A "$dir") ]]; then
        rm -rf "$dir"
    else
        die "not removing $dir: it is not a PostgreSQL data directory"
    fi
}

case ${1:-} in
    start)
        [[ $# -eq 3 ]] || usage
        start "$2" "$3"
        ;;
    stop)
        [[ $# -eq 2 ]] || usage
        stop "$2"
        ;;
    *) usage ;;
esac
