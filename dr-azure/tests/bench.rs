//! Runs the `azure-bench` example once on a tiny object against Azurite, so the bench cannot
//! rot. Without `AZURITE_BLOB_URL` it prints a `skipped:` line and passes, unless `CI` is set.

#[allow(unreachable_pub)] // `pub` for the example, private here.
#[path = "../examples/azure_bench.rs"]
mod azure_bench;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_azure_bench_runs_on_a_tiny_object() {
    if dr_core::testkit::standin("AZURITE_BLOB_URL", "Azurite").is_none() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // More than one 8 MiB block: blocks staged in parallel, then committed.
    let bytes = 11 * 1024 * 1024 + 7;
    let rows = azure_bench::azure_bench(bytes, 1, dir.path().to_path_buf())
        .await
        .expect("bench");
    let ops: Vec<&str> = rows.iter().map(|r| r.operation.as_str()).collect();
    assert_eq!(ops, ["put", "put", "put", "get"]);
    for r in &rows {
        assert_eq!(r.bytes, bytes);
        // curl is there wherever the stand-ins are (their start scripts use it).
        assert!(r.theirs.is_ok(), "{r}");
        println!("{r}");
    }
}
