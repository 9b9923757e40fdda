//! The store's integration tests: every case in `cases` runs on a fresh SQLite file and on a
//! fresh PostgreSQL database (`GATEHOUSE_TEST_DATABASE_URL`; see `common`), plus a few cases
//! that only make sense on one of them.

// The cases and helpers are plain async functions called from `#[tokio::test]`s, which
// clippy's `allow-unwrap-in-tests` does not see as tests; a panic in them fails the test,
// exactly as in a test body.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod common;

/// One `#[tokio::test]` per case, each running `$case` through `$runner`.
macro_rules! run_cases_on {
    ($runner:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $runner(crate::cases::$case).await;
            }
        )*
    };
}

/// The cases both databases must pass, identically.
macro_rules! shared_cases {
    ($runner:path) => {
        run_cases_on!(
            $runner;
            crud_round_trip,
            revisions_increase_by_the_number_of_ops,
            if_match_succeeds_on_the_current_revision_and_fails_with_the_current_one,
            if_none_match_creates_once_then_reports_already_exists,
            a_failed_op_rolls_back_the_whole_batch,
            ops_later_in_a_batch_see_earlier_ones,
            changes_since_lists_each_op_in_revision_order,
            compaction_drops_old_changes_and_reports_the_horizon,
            all_reads_every_entity_at_one_revision,
            list_searches_ids_case_insensitively_and_pages,
            list_caps_the_page_at_the_maximum,
            gateway_keys_are_stored_replaced_and_deleted,
            heartbeats_upsert_per_instance_and_filter_by_last_seen,
            watch_wakes_on_a_local_commit,
            reconnecting_keeps_the_data_and_migrates_once,
            // SQLite: two pools on one file, serialised by BEGIN IMMEDIATE.
            concurrent_writers_on_two_stores_get_distinct_consecutive_revisions,
            planned_writes_check_what_they_commit_under_concurrency,
            a_plan_sees_the_revision_and_its_error_rolls_back,
            settings_are_set_once_and_shared,
            heartbeats_are_deleted_pruned_and_forgotten_with_their_gateway,
            a_closed_store_refuses_calls,
        );
    };
}

mod sqlite {
    shared_cases!(crate::common::on_sqlite);
    run_cases_on!(
        crate::common::on_sqlite;
        sqlite_memory_databases_are_private_and_work,
        sqlite_files_are_created_with_their_folder_in_wal_mode,
    );
}

mod postgres {
    shared_cases!(crate::common::on_postgres);
    run_cases_on!(
        crate::common::on_postgres;
        a_write_through_one_store_wakes_the_others_watch_within_100ms,
        the_listener_recovers_when_its_session_is_killed,
    );
}
