//! Runs the `gcs-bench` example once on a tiny object against fake-gcs-server, so the bench
//! cannot rot. Without `GCS_EMULATOR_URL` it prints a `skipped:` line and passes, unless `CI`
//! is set.

#[allow(unreachable_pub)] // `pub` for the example, private here.
#[path = "../examples/gcs_bench.rs"]
mod gcs_bench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gcs_bench_runs_on_a_tiny_object() {
    if dr_core::testkit::standin("GCS_EMULATOR_URL", "fake-gcs-server").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // More than one 8 MiB chunk: a resumable upload of two chunks, the second one partial.
    let bytes = 11 * 1024 * 1024 + 7;
    let rows = gcs_bench::gcs_bench(bytes, 1, dir.path().to_path_buf())
        .await
        .expect("bench");
    let ops: Vec<&str> = rows.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["put", "get"]);
    for r in &rows {
        assert_eq!(r.bytes, bytes);
        // curl and sh are there wherever the stand-ins are (their start scripts use them).
        assert!(r.theirs.is_ok(), "{r}");
        println!("{r}");
    }
}
