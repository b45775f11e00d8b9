"""Which tests are slow by nature, and how many examples a property test tries in each lane.

``python -m pytest -m "not slow"`` is the fast lane (under a minute on two
cores); plain ``python -m pytest`` runs everything, this included. The
policy lives here, not in a decorator per test, so that it reads as one
list and a test module never has to change to move lanes. Server tests
need no entry: :func:`tests.conftest.pytest_collection_modifyitems` finds
them from the fixtures and parameters they use.

Example: ``SLOW["test_concurrency.py"] = ALL`` puts the whole module in the
slow lane; a set of names puts only those tests there.
"""

from __future__ import annotations

#: Every test of the module.
ALL: frozenset[str] = frozenset({"*"})

#: Module file name → the tests (by function name) that are slow, with why.
SLOW: dict[str, frozenset[str]] = {
    # process pools of eight writers, and threads racing for seconds
    "test_concurrency.py": ALL,
    # two promoter processes racing, three rounds on each backend
    "test_promotion_race.py": ALL,
    # each runs another interpreter per version (and one builds a virtual environment)
    "test_preflight.py": frozenset(
        {
            "test_the_aliased_versions_by_default_every_version_with_all_versions_or_those_named",
            "test_a_model_that_predicts_otherwise_there_is_changed_with_the_rows_and_sizes",
            "test_warnings_over_there_are_reported_and_the_canary_still_runs",
            "test_what_the_model_prints_while_loading_does_not_spoil_the_answer",
            "test_a_crash_or_an_exit_fails_that_version_and_the_others_still_run",
            "test_a_hang_is_stopped_at_the_timeout_with_what_the_model_started",
            "test_a_skops_version_loads_over_there_with_the_types_trusted_here",
            "test_the_other_interpreter_gets_no_keys_and_an_empty_directory_not_ours",
            "test_bytes_swapped_in_the_store_are_refused_here_and_never_reach_the_other_interpreter",
            "test_a_version_pointed_by_sql_at_an_attackers_blob_is_refused_with_the_key_before_anything_runs",
            "test_a_class_the_other_interpreter_cannot_import_fails_with_its_error",
            "test_an_interpreter_without_numpy_or_scikit_learn_is_refused_naming_what_to_install",
            "test_the_command_prints_a_table_and_exits_3_when_an_aliased_version_would_break",
            "test_the_readme_table_is_what_a_real_older_scikit_learn_and_numpy_report",
        }
    ),
    # real read-only bind mounts, and a writer process beside the reader
    "test_read_only_mount.py": ALL,
    # a real chromium driven by Playwright against `modelshelf ui` run as a subprocess
    "test_ui_browser.py": ALL,
    # each runs `modelshelf serve` as a subprocess and talks to it over HTTP while the alias moves
    "test_serve_server.py": ALL,
    # each runs `modelshelf ui` as a subprocess
    "test_ui.py": frozenset(
        {
            "test_the_json_line_comes_once_listening_with_the_port_bound",
            "test_a_port_taken_announces_nothing_and_says_so",
        }
    ),
    # each runs `modelshelf` or `python` as a subprocess
    "test_cli.py": frozenset(
        {
            "test_demo_runs_in_a_fresh_directory",
            "test_environment_variables_select_the_registry",
            "test_errors_are_one_line_with_an_exit_code",
            "test_usage_errors_exit_2",
        }
    ),
    "test_register_load.py": frozenset({"test_another_process_sees_what_was_registered"}),
    # `modelshelf check` run in a second interpreter whose imported module predicts otherwise
    "test_canary.py": frozenset({"test_a_second_process_whose_code_predicts_otherwise_fails_the_check"}),
    # a script run as `python train.py`, then a second interpreter that loads what it registered
    "test_portability.py": frozenset(
        {"test_a_script_registers_with_a_warning_and_another_process_is_told_to_move_the_class"}
    ),
    # a real process interrupted by SIGINT, and read-only bind mounts (tests/mounts.py)
    "test_cli_processes.py": ALL,
    # trains the demo's models twice
    "test_cli_json.py": frozenset({"test_demo_prints_json_before_and_after_it"}),
    "test_migrations.py": frozenset(
        {"test_developer_alembic_ini_works_too", "test_the_wheel_ships_the_migrations_and_creates_catalogs"}
    ),
    # each waits for a process a payload would have spawned before it can say nothing ran
    "test_attacks_pickle.py": frozenset(
        {
            "test_popen_reached_through_sklearn_base_is_refused",
            "test_a_payload_hidden_in_front_of_a_working_estimator_is_refused",
            "test_threading_thread_reexported_by_sklearn_starts_nothing",
            "test_stack_global_with_a_sklearn_chain_from_the_memo_is_refused",
            "test_inst_imports_and_calls_in_one_opcode_and_is_refused",
            "test_obj_calls_a_class_from_the_stack_and_is_refused",
            "test_extension_codes_resolve_through_the_same_check",
            "test_a_stream_that_breaks_after_its_payload_is_refused_before_the_payload",
            "test_protocol_0_text_forms_are_checked_like_the_binary_ones",
            "test_an_opcode_straddling_a_frame_boundary_never_runs",
            "test_look_alike_and_split_names_are_refused",
            "test_a_payload_in_a_nested_object_array_stream_is_refused",
        }
    ),
    # real git repositories, made with the git binary, and scripts run in them
    "test_provenance_lineage.py": ALL,
    # a fresh interpreter, and 50 MB arrays hashed under tracemalloc
    "test_provenance_fingerprint.py": frozenset(
        {"test_fingerprints_are_the_same_in_another_process", "test_memory_stays_bounded"}
    ),
    "test_provenance.py": frozenset(
        {
            "test_a_script_in_a_git_repository_records_commit_script_and_dirty_flag",
            "test_a_script_path_that_is_not_utf8_is_recorded_escaped",
        }
    ),
    "test_backends_catalog.py": frozenset({"test_a_sha256_repository_records_its_64_digit_commit"}),
    # lint and type checks run as subprocesses (ruff, lint-imports, mypy) and a fresh interpreter
    "test_project.py": frozenset(
        {
            "test_import_layers_hold",
            "test_importing_registry_does_not_import_heavy_modules",
            "test_ruff_is_clean",
        }
    ),
    "test_query.py": frozenset({"test_importing_the_module_does_not_import_lark"}),
    # a server reached inside the test body rather than through a fixture
    "test_hostile_bundles.py": frozenset({"test_fields_the_server_would_refuse_are_refused_before_it_on_postgresql"}),
    # big artifacts: bombs, colliding hashes, deep nesting and large arrays, each built to hit a resource bound
    "test_unpickler.py": frozenset({"test_a_decompression_bomb_stops_at_the_budget"}),
    "test_redteam.py": frozenset(
        {
            "test_a_set_made_by_a_call_of_colliding_integers_is_bounded",
            "test_a_dict_of_colliding_integer_keys_is_bounded",
            "test_a_second_build_on_an_array_a_sparse_matrix_views_is_refused",
            "test_datetime_dtype_state_without_metadata_does_not_crash_the_load",
            "test_deeply_nested_lists_and_dicts_do_not_crash",
            "test_an_index_array_rebuilt_after_scipy_checked_it_is_refused",
            "test_a_field_dtype_rebuilt_after_a_structured_dtype_was_made_of_it_is_refused",
            "test_a_dtype_rebuilt_after_an_array_was_made_of_it_is_refused",
            "test_lil_matrix_with_a_column_outside_its_shape_is_refused",
            "test_repr_of_a_shared_list_dag_in_a_refusal_message_is_bounded",
            # each loads its attack in a fresh interpreter and measures that process's CPU time
            "test_hashing_a_shared_tuple_dag_as_a_dict_key_is_bounded",
            "test_a_frozenset_of_a_shared_tuple_dag_is_bounded",
        }
    ),
    # a real read-only bind mount (mount and umount run as subprocesses)
    "test_plot.py": frozenset({"test_a_read_only_directory_is_one_line_and_exit_2"}),
    # mypy as a subprocess, and every README block before the DataFrame one (models trained, loaded, verified)
    "test_frames.py": frozenset(
        {
            "test_type_checkers_see_a_list_without_as_frame_and_a_frame_with_it",
            "test_the_readme_dataframe_snippet_runs_and_prints_typed_columns",
        }
    ),
}

#: Set by ``tests/conftest.py`` (before any test module is imported) when the run leaves out slow tests.
fast_lane = False


#: A test whose name holds one of these runs a lint or type checker (a test added later included): slow.
CHECKER_WORDS = ("mypy", "ruff", "lint")


def is_slow(module: str, test: str) -> bool:
    """Whether :data:`SLOW` or :data:`CHECKER_WORDS` put ``test`` of ``module`` (a file name) in the slow lane."""
    names = SLOW.get(module, frozenset())
    return "*" in names or test in names or any(word in test for word in CHECKER_WORDS)


def examples(full: int, fast: int = 25) -> int:
    """A property test's example count: ``full`` when the whole suite runs, ``fast`` in the fast lane.

    The whole suite (the README's command) still tries ``full`` examples;
    the fast lane tries fewer so that it stays quick.
    """
    return min(fast, full) if fast_lane else full
