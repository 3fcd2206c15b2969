# Conveniences that mirror the README (install just with `pip install rust-just`).

# Run the six setup scenarios on embedded simulated servers.
run *ARGS:
    cargo run --release -- run {{ARGS}}

# The test suite, as CI runs it.
test:
    cargo test --workspace

# Serve the products with a scenario's starting world.
serve SCENARIO="existing-existing" *ARGS:
    cargo run --release -- serve --scenario {{SCENARIO}} {{ARGS}}

# Benchmark the six scenarios over HTTP and in-process (release build).
bench:
    cargo run --release -- bench

# Review changed snapshots (needs cargo-insta).
review:
    cargo insta review

# Everything CI checks.
ci:
    bash .ci/run

# Cost against data size, in process: import, initial sync, GET, filter, create, heap, state export/import.
bench-scale SIZES="1000,10000,100000,500000,1000000":
    cargo run --release -- bench --scale {{SIZES}}

# Load over HTTPS from another process: wrk against `dwsim serve` with N accounts (needs wrk, curl, jq).
wrk ACCOUNTS="100000" SECONDS="10":
    cargo build --release
    benches/wrk/run.sh {{ACCOUNTS}} {{SECONDS}}
