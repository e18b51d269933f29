# A throwaway PostgreSQL cluster on a free loopback port, for tests and benchmarks.
# `start_postgres` exports ESPBRIDGE_TEST_POSTGRES_URL (a superuser URL);
# `stop_postgres` removes the cluster. Needs Debian's postgresql package.

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

start_postgres() {
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    pg_dir=$(mktemp -d /tmp/espbridge-pg.XXXXXX)
    pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # initdb refuses to run as root: the cluster then belongs to the postgres user.
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$pg_dir" postgres
        chown postgres "$pg_dir"
        pg_as=(runuser -u postgres --)
    else
        pg_as=()
    fi
    echo "== starting PostgreSQL ($("$pg_bin/postgres" --version)) on 127.0.0.1:$pg_port"
    "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$pg_dir/initdb.log"
    # fsync off: the cluster is thrown away; durability is not what runs here measure.
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w start \
        -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" >/dev/null
    export ESPBRIDGE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
}

stop_postgres() {
    if [ -n "${pg_dir:-}" ]; then
        "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir"
    fi
}
