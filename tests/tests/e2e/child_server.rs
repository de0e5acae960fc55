//! The child side of [`videovector_tests::child::ChildServer`]: ignored, so it runs only when
//! a test starts it in a child process (outside one it returns at once).

#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by ChildServer in a child process"]
async fn serve() {
    videovector_tests::child::serve_in_child().await;
}
