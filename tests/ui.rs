//! Compile-fail cases: each is one mistake a user makes, with the error the
//! macros give for it pinned in the `.stderr` beside it.
//!
//! The messages are pinned to one compiler: our machines ship rustc 1.95.
//! Regenerate with `TRYBUILD=overwrite cargo test -p feast-tests --test ui`
//! and review the diff.

#[rustversion::attr(not(stable(1.95)), ignore = "stderr is pinned to rustc 1.95")]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*/*.rs");
}
