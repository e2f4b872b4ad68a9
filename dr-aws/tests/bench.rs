//! Runs the `s3-bench` example once on a tiny object against moto, so the bench cannot rot.
//! Without `AWS_ENDPOINT_URL` it prints a `skipped:` line and passes, unless `CI` is set.

#[allow(unreachable_pub)] // `pub` for the example, private here.
#[path = "../examples/s3_bench.rs"]
mod s3_bench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_bench_runs_on_a_tiny_object() {
    if dr_core::testkit::standin("AWS_ENDPOINT_URL", "moto").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // More than one 8 MiB part: the multipart path, parts in parallel.
    let bytes = 11 * 1024 * 1024 + 7;
    let rows = s3_bench::s3_bench(bytes, 1, dir.path().to_path_buf())
        .await
        .expect("bench");
    let ops: Vec<&str> = rows.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["put", "get", "put (sha256 given)"]);
    for r in &rows {
        assert_eq!(r.bytes, bytes);
        // The AWS CLI is not installed by the test command: its absence is reported.
        println!("{r}");
    }
}
