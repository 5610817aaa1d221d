-- Hand-written cases. Each statement ends with ';' at the end of a line;
-- a line '-- case: NAME' before it names it (the allowlist uses names).
-- case: is_distinct_and
SELECT true IS DISTINCT FROM false AND false;
-- case: is_distinct_where
SELECT id FROM d_a WHERE b IS DISTINCT FROM false AND x > 1 ORDER BY id;
-- case: cte_shadows_table
WITH d_a AS (SELECT 99 AS id) SELECT id FROM d_a;
-- case: intersect_all
SELECT * FROM (VALUES (1),(1),(1),(2)) AS l(c) INTERSECT ALL SELECT * FROM (VALUES (1),(1),(2),(2)) AS r(c) ORDER BY 1;
-- case: except_all
SELECT * FROM (VALUES (1),(1),(1),(2)) AS l(c) EXCEPT ALL SELECT * FROM (VALUES (1),(2),(2)) AS r(c) ORDER BY 1;
-- case: bigint_overflow
SELECT CAST(9223372036854775807 AS BIGINT) + 1;
-- case: bigint_overflow_column
SELECT y * 9223372036854775807 FROM d_a WHERE y > 1;
-- case: bigint_product_in_sum_overflow
SELECT sum(y * 922337203685477580) FROM d_a;
-- case: cast_numeric_to_int_rounds
SELECT CAST(1.7 AS INT), CAST(-2.5 AS INT), CAST(2.5 AS INT);
-- case: decimal_assignment_rounds
SELECT CAST(1.005 AS DECIMAL(5,2));
-- case: division_by_zero
SELECT 1 / 0;
-- case: scalar_subquery_two_rows
SELECT (SELECT v FROM d_b);
-- case: unknown_setting
SET nosuch.x = 1;
-- case: unknown_setting_plain
SET nosuchsetting = 1;
-- case: current_database
SELECT current_database() IS NOT NULL;
-- case: correlated_non_equality
SELECT id, (SELECT count(*) FROM d_a AS i WHERE i.x < o.x) FROM d_a AS o ORDER BY id;
-- case: exists_in_select
SELECT id, EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = d_a.id) FROM d_a ORDER BY id;
-- case: in_in_select
SELECT id, x IN (SELECT v FROM d_b) FROM d_a ORDER BY id;
-- case: not_in_with_nulls
SELECT id FROM d_a WHERE x NOT IN (SELECT a_id FROM d_b) ORDER BY id;
-- case: not_in_without_nulls
SELECT id FROM d_a WHERE x NOT IN (SELECT a_id FROM d_b WHERE a_id IS NOT NULL) ORDER BY id;
-- case: lateral
SELECT a.id, l.v FROM d_a AS a, LATERAL (SELECT v FROM d_b WHERE d_b.a_id = a.id ORDER BY v LIMIT 1) AS l ORDER BY a.id;
-- case: lateral_limit_desc
SELECT a.id, l.v, l.t FROM d_a AS a CROSS JOIN LATERAL (SELECT v, t FROM d_b WHERE d_b.a_id = a.id ORDER BY v DESC NULLS LAST LIMIT 2) AS l ORDER BY a.id, l.v;
-- case: left_lateral_limit
SELECT a.id, l.v FROM d_a AS a LEFT JOIN LATERAL (SELECT v FROM d_b WHERE d_b.a_id = a.x ORDER BY v LIMIT 1) AS l ON true ORDER BY a.id;
-- case: left_lateral_on_condition
SELECT a.id, l.v FROM d_a AS a LEFT JOIN LATERAL (SELECT v FROM d_b WHERE d_b.a_id = a.id ORDER BY v LIMIT 2) AS l ON l.v > 150 ORDER BY a.id, l.v;
-- case: lateral_projection_only
SELECT a.id, l.doubled, l.label FROM d_a AS a, LATERAL (SELECT a.x * 2 AS doubled, a.s || '!' AS label) AS l ORDER BY a.id;
-- case: lateral_chain
SELECT a.id, l1.v, l2.c FROM d_a AS a, LATERAL (SELECT v FROM d_b WHERE d_b.a_id = a.id ORDER BY v LIMIT 1) AS l1, LATERAL (SELECT count(*) AS c FROM d_b WHERE d_b.v < l1.v) AS l2 ORDER BY a.id;
-- case: lateral_distinct
SELECT a.id, l.t FROM d_a AS a, LATERAL (SELECT DISTINCT t FROM d_b WHERE d_b.a_id = a.x OR d_b.a_id = a.id) AS l ORDER BY a.id, l.t;
-- case: lateral_window
SELECT a.id, l.v, l.r FROM d_a AS a, LATERAL (SELECT v, row_number() OVER (ORDER BY v) AS r FROM d_b WHERE d_b.a_id <= a.id) AS l WHERE a.id < 3 ORDER BY a.id, l.r;
-- case: lateral_null_binding
SELECT a.id, l.n FROM d_a AS a, LATERAL (SELECT count(*) AS n FROM d_b WHERE d_b.a_id = a.x OR (a.x IS NULL AND d_b.a_id IS NULL)) AS l ORDER BY a.id;
-- case: lateral_union
SELECT a.id, l.v FROM d_a AS a, LATERAL (SELECT v FROM d_b WHERE d_b.a_id = a.id UNION ALL SELECT a.x) AS l ORDER BY a.id, l.v;
-- case: lateral_group_by
SELECT a.id, l.t, l.n FROM d_a AS a, LATERAL (SELECT t, count(*) AS n FROM d_b WHERE d_b.a_id = a.id GROUP BY t) AS l ORDER BY a.id, l.t;
-- case: scalar_subquery_limit
SELECT a.id, (SELECT v FROM d_b WHERE d_b.a_id = a.id ORDER BY v DESC NULLS LAST LIMIT 1) AS top FROM d_a AS a ORDER BY a.id;
-- case: scalar_subquery_not_aggregate_two_rows
SELECT a.id, (SELECT v FROM d_b WHERE d_b.a_id = a.id) FROM d_a AS a ORDER BY a.id;
-- case: scalar_subquery_not_aggregate_one_row
SELECT a.id, (SELECT t FROM d_b WHERE d_b.id = a.id) FROM d_a AS a ORDER BY a.id;
-- case: scalar_subquery_limit_in_where
SELECT a.id FROM d_a AS a WHERE a.x = (SELECT a_id FROM d_b WHERE d_b.a_id = a.x ORDER BY v LIMIT 1) ORDER BY a.id;
-- case: scalar_subquery_limit_in_case
SELECT a.id, CASE WHEN a.b THEN (SELECT t FROM d_b WHERE d_b.a_id = a.id ORDER BY t LIMIT 1) ELSE 'no' END FROM d_a AS a ORDER BY a.id;
-- case: nested_correlation_scalar
SELECT a.id, (SELECT count(*) FROM d_b WHERE d_b.a_id = a.id AND d_b.v > (SELECT min(v) FROM d_b AS b2 WHERE b2.a_id = a.id)) FROM d_a AS a ORDER BY a.id;
-- case: nested_correlation_exists
SELECT a.id FROM d_a AS a WHERE EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = a.id AND EXISTS (SELECT 1 FROM d_b AS b2 WHERE b2.v > d_b.v AND b2.a_id = a.x)) ORDER BY a.id;
-- case: nested_correlation_not_exists
SELECT a.id FROM d_a AS a WHERE NOT EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = a.id AND NOT EXISTS (SELECT 1 FROM d_b AS b2 WHERE b2.v < d_b.v AND b2.a_id = a.id)) ORDER BY a.id;
-- case: nested_correlation_in
SELECT a.id FROM d_a AS a WHERE a.y IN (SELECT v / 10 FROM d_b WHERE d_b.v > (SELECT min(v) FROM d_b AS b2 WHERE b2.a_id = a.id)) ORDER BY a.id;
-- case: exists_limit_correlated
SELECT a.id FROM d_a AS a WHERE EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = a.id ORDER BY v LIMIT 1) ORDER BY a.id;
-- case: in_limit_correlated
SELECT a.id FROM d_a AS a WHERE a.x IN (SELECT a_id FROM d_b WHERE d_b.v > a.y ORDER BY v LIMIT 1) ORDER BY a.id;
-- case: same_name_three_levels
SELECT d_a.id FROM d_a WHERE EXISTS (SELECT 1 FROM d_a AS m WHERE m.id = d_a.x AND EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = m.id AND d_b.v > d_a.y)) ORDER BY d_a.id;
-- case: srf_in_from_implicit_lateral
SELECT a.id, g FROM d_a AS a, generate_series(1, a.x) AS g WHERE a.x > 0 ORDER BY a.id, g;
-- case: srf_in_from_lateral_keyword
SELECT a.id, g.g FROM d_a AS a, LATERAL generate_series(a.x, 3) AS g WHERE a.x IS NOT NULL ORDER BY a.id, g.g;
-- case: srf_left_join_empty
SELECT a.id, g FROM d_a AS a LEFT JOIN generate_series(a.x, 1) AS g ON true WHERE a.id < 6 ORDER BY a.id, g;
-- case: srf_step_column
SELECT a.id, g FROM d_a AS a, generate_series(1, 9, a.x) AS g WHERE a.x > 2 ORDER BY a.id, g;
-- case: srf_column_named_by_alias
SELECT g FROM generate_series(1, 3) AS g ORDER BY g;
-- case: srf_column_named_by_function
SELECT * FROM generate_series(2, 4) ORDER BY 1;
-- case: srf_column_list
SELECT n FROM generate_series(1, 3) AS g(n) ORDER BY n;
-- case: unnest_outer_array
SELECT a.id, u FROM d_a AS a, unnest(ARRAY[a.x, a.id]) AS u WHERE a.id < 4 ORDER BY a.id, u;
-- case: unnest_column_named_by_alias
SELECT u FROM unnest(ARRAY[3, 1, 2]) AS u ORDER BY u;
-- case: array_of_outer_columns_in_subquery
SELECT a.id, (SELECT max(e) FROM unnest(ARRAY[a.x, a.id]) AS e) FROM d_a AS a ORDER BY a.id;
-- case: lateral_having_ungrouped
SELECT a.id, x.n FROM d_a AS a, LATERAL (SELECT count(*) AS n FROM d_b WHERE d_b.a_id = a.id HAVING count(*) > 1) AS x ORDER BY a.id;
-- case: lateral_no_columns
SELECT a.id FROM d_a AS a, LATERAL (SELECT FROM d_b WHERE d_b.a_id = a.id LIMIT 1) AS x ORDER BY a.id;
-- case: lateral_using
SELECT a.id, x.v FROM d_a AS a LEFT JOIN LATERAL (SELECT d_b.id, d_b.v FROM d_b WHERE d_b.a_id >= a.x ORDER BY d_b.v LIMIT 2) AS x USING (id) ORDER BY a.id, x.v;
-- case: lateral_nested_two_levels
SELECT a.id, x.v, x.t FROM d_a AS a, LATERAL (SELECT b.v, y.t FROM d_b AS b, LATERAL (SELECT c.t FROM d_b AS c WHERE c.a_id = b.a_id AND c.v >= a.x ORDER BY c.t LIMIT 1) AS y WHERE b.a_id <= a.id) AS x WHERE a.id < 5 ORDER BY 1, 2, 3;
-- case: scalar_subquery_of_outer_column
SELECT a.id, (SELECT a.x + 1) AS next FROM d_a AS a ORDER BY a.id;
-- case: order_by_correlated_subquery
SELECT a.id FROM d_a AS a ORDER BY (SELECT max(v) FROM d_b WHERE d_b.a_id = a.id) NULLS FIRST, a.id;
-- case: order_by_correlated_exists
SELECT a.id FROM d_a AS a ORDER BY EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = a.id LIMIT 1), a.id;
-- case: filter_on_outer_column_before_subquery
SELECT s.id, s.v FROM (SELECT a.id, (SELECT v FROM d_b WHERE d_b.a_id = a.id) AS v FROM d_a AS a) AS s WHERE s.id = 4;
-- case: apply_sequence_setup
CREATE SEQUENCE d_apply_seq;
-- case: lateral_volatile_per_row
SELECT count(DISTINCT x.n), count(*) FROM d_a AS a, LATERAL (SELECT nextval('d_apply_seq') + 0 * a.x AS n LIMIT 1) AS x WHERE a.x IS NOT NULL;
-- case: derived_join_wildcard_ambiguous
SELECT id FROM (SELECT * FROM d_a JOIN d_b ON d_b.a_id = d_a.id) AS s;
-- case: derived_join_wildcard_qualified_ambiguous
SELECT q.id FROM (SELECT * FROM d_a JOIN d_b ON d_b.a_id = d_a.id) AS q;
-- case: derived_join_wildcard_names
SELECT * FROM (SELECT d_a.id, d_b.id FROM d_a JOIN d_b ON d_b.a_id = d_a.id) AS s ORDER BY 1, 2;
-- case: derived_join_wildcard_other_column
SELECT s.x, s.v FROM (SELECT * FROM d_a JOIN d_b ON d_b.a_id = d_a.id) AS s ORDER BY 1, 2;
-- case: derived_repeated_explicit_ambiguous
SELECT id FROM (SELECT d_a.id, d_b.id FROM d_a, d_b) AS s;
-- case: derived_column_list_resolves_repeat
SELECT i1, i2 FROM (SELECT * FROM d_a JOIN d_b ON d_b.a_id = d_a.id) AS s (i1, x1, y1, s1, b1, n1, i2) ORDER BY 1, 2;
-- case: cte_column_list_shorter
WITH s (a) AS (SELECT id, x FROM d_a WHERE id < 3) SELECT * FROM s ORDER BY a;
-- case: cte_column_list_used
WITH s (k, total) AS (SELECT a_id, sum(v) FROM d_b GROUP BY a_id) SELECT k, total FROM s WHERE k IS NOT NULL ORDER BY k;
-- case: values_alias_list_shorter
SELECT * FROM (VALUES (1, 2), (3, 4)) AS v (a) ORDER BY a;
-- case: cte_column_list_longer
WITH s (a, b, c) AS (SELECT 1, 2) SELECT * FROM s;
-- case: cte_join_wildcard_names
WITH c AS (SELECT * FROM d_a JOIN d_b ON d_b.a_id = d_a.id) SELECT * FROM c WHERE c.x = 1 ORDER BY 9;
-- case: cte_join_wildcard_ambiguous
WITH c AS (SELECT * FROM d_a JOIN d_b ON d_b.a_id = d_a.id) SELECT id FROM c;
-- case: derived_alias_list_makes_repeat_ambiguous
SELECT q.id FROM (SELECT 1 AS a, 2 AS id, 3 AS id) AS q (id);
-- case: derived_alias_list_resolves_repeat
SELECT q.a FROM (SELECT 5 AS a, 2 AS b, 3 AS a) AS q (id);
-- case: derived_alias_list_creates_repeat
SELECT * FROM (SELECT 1 AS a, 2 AS b) AS q (b);
-- case: cte_list_resolves_repeat
WITH c (a) AS (SELECT 1 AS z, 2 AS z) SELECT z FROM c;
-- case: unique_index_setup
CREATE UNIQUE INDEX d_b_t_uidx ON d_b (id, t);
-- case: drop_constraint_of_unique_index
ALTER TABLE d_b DROP CONSTRAINT d_b_t_uidx;
-- case: drop_index_of_unique_index
DROP INDEX d_b_t_uidx;
-- case: drop_index_of_constraint
DROP INDEX d_b_pkey;
-- case: srf_alias_list_too_long
SELECT * FROM d_a AS a, generate_series(1, a.x) AS g (p, q);
-- case: two_identical_subqueries
SELECT (SELECT max(v) FROM d_b), (SELECT max(v) FROM d_b);
-- case: null_concat
SELECT NULL || NULL;
-- case: left_join_count
SELECT a.id, count(b.id) FROM d_a AS a LEFT JOIN d_b AS b ON b.a_id = a.id GROUP BY a.id ORDER BY a.id;
-- case: full_join
SELECT a.id, b.id FROM d_a AS a FULL JOIN d_b AS b ON b.a_id = a.id ORDER BY a.id NULLS LAST, b.id NULLS LAST;
-- case: window_running_sum
SELECT id, sum(x) OVER (PARTITION BY b ORDER BY id) FROM d_a ORDER BY id;
-- case: window_rank
SELECT id, rank() OVER (ORDER BY x DESC NULLS LAST) FROM d_a ORDER BY id;
-- case: group_having
SELECT s, count(*), sum(y) FROM d_a GROUP BY s HAVING count(*) > 1 ORDER BY s;
-- case: distinct_on_nulls
SELECT DISTINCT x FROM d_a ORDER BY x NULLS FIRST;
-- case: coalesce_case
SELECT id, COALESCE(x, -1), CASE WHEN b THEN 'y' WHEN NOT b THEN 'n' ELSE '?' END FROM d_a ORDER BY id;
-- case: like_and_ilike
SELECT id FROM d_a WHERE s LIKE 'a%' OR s ILIKE 'B%' ORDER BY id;
-- case: string_functions
SELECT id, upper(s), length(s), substring(s from 2 for 3), s || '!' FROM d_a ORDER BY id;
-- case: integer_division_and_modulo
SELECT id, x / 2, x % 3, -x / 2 FROM d_a WHERE x IS NOT NULL ORDER BY id;
-- case: avg_of_int
SELECT avg(x), avg(n), sum(n) FROM d_a;
-- case: round_numeric
SELECT round(n, 1), round(2.5), round(-2.5) FROM d_a ORDER BY id;
-- case: between_and_in_null
SELECT id FROM d_a WHERE x BETWEEN 1 AND 3 OR x IN (8, NULL) ORDER BY id;
-- case: order_by_nulls_default
SELECT x FROM d_a ORDER BY x;
-- case: order_by_desc_nulls_default
SELECT x FROM d_a ORDER BY x DESC;
-- case: union_types
SELECT x FROM d_a UNION SELECT v FROM d_b ORDER BY 1;
-- case: cte_recursive
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT sum(n) FROM r;
-- case: count_distinct
SELECT count(DISTINCT s), count(s), count(*) FROM d_a;
-- case: bool_aggregates
SELECT bool_and(b), bool_or(b) FROM d_a;
-- case: string_agg
SELECT string_agg(s, ',' ORDER BY id) FROM d_a WHERE s IS NOT NULL;
-- case: cast_text_to_int_error
SELECT CAST('abc' AS INT);
-- case: smallint_overflow
SELECT CAST(100000 AS SMALLINT);
-- case: bigint_overflow_in_filter
SELECT count(*) FROM d_a WHERE y * 922337203685477580 > 0;
-- case: bigint_overflow_in_group_by
SELECT y * 922337203685477580 FROM d_a GROUP BY y * 922337203685477580;
-- case: bigint_overflow_untaken_case_arm
SELECT CASE WHEN id > 100 THEN y * 9223372036854775807 ELSE 0 END FROM d_a ORDER BY id;
-- case: bigint_subtraction_overflow
SELECT -9223372036854775807 - y FROM d_a WHERE y > 1;
-- case: sum_bigint_is_numeric
SELECT sum(v) FROM (VALUES (CAST(9223372036854775807 AS BIGINT)), (CAST(10 AS BIGINT))) AS t(v);
-- case: sum_bigint_window
SELECT id, sum(y) OVER (ORDER BY id) FROM d_a ORDER BY id;
-- case: in_select_three_valued
SELECT id, x IN (SELECT a_id FROM d_b), x NOT IN (SELECT a_id FROM d_b) FROM d_a ORDER BY id;
-- case: in_select_no_nulls
SELECT id, x IN (SELECT v FROM d_b WHERE v IS NOT NULL), x NOT IN (SELECT v FROM d_b WHERE v IS NOT NULL) FROM d_a ORDER BY id;
-- case: in_select_correlated
SELECT id, x IN (SELECT a_id FROM d_b WHERE d_b.v > d_a.y) FROM d_a ORDER BY id;
-- case: in_select_empty_subquery
SELECT id, x IN (SELECT a_id FROM d_b WHERE false), x NOT IN (SELECT a_id FROM d_b WHERE false) FROM d_a ORDER BY id;
-- case: not_in_correlated_where
SELECT id FROM d_a WHERE x NOT IN (SELECT a_id FROM d_b WHERE d_b.id = d_a.id) ORDER BY id;
-- case: not_in_under_or
SELECT id FROM d_a WHERE x NOT IN (SELECT a_id FROM d_b) OR id = 3 ORDER BY id;
-- case: not_of_in_under_or
SELECT id FROM d_a WHERE NOT (x IN (SELECT a_id FROM d_b WHERE a_id IS NOT NULL)) OR id < 3 ORDER BY id;
-- case: in_is_null
SELECT id FROM d_a WHERE (x IN (SELECT a_id FROM d_b)) IS NULL ORDER BY id;
-- case: exists_in_case
SELECT id, CASE WHEN EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = d_a.id) THEN 'y' ELSE 'n' END FROM d_a ORDER BY id;
-- case: not_exists_in_select
SELECT id, NOT EXISTS (SELECT 1 FROM d_b WHERE d_b.a_id = d_a.id AND d_b.v > 150) FROM d_a ORDER BY id;
-- case: in_subquery_in_aggregate_query
SELECT x IN (SELECT a_id FROM d_b) AS hit, count(*) FROM d_a GROUP BY 1 ORDER BY 1;
-- case: output_names
SELECT count(*), sum(x), min(s), x + 1, CAST(x AS BIGINT), CAST(1 AS BIGINT), 1, 'a', COALESCE(x, 0) FROM d_a GROUP BY x ORDER BY x;
-- case: output_names_case
SELECT CASE WHEN x > 0 THEN 1 END, CASE WHEN x > 0 THEN 1 ELSE x END, CASE WHEN x > 0 THEN 1 ELSE 0 END FROM d_a ORDER BY id;
-- case: output_names_subqueries
SELECT EXISTS (SELECT 1), (SELECT max(v) FROM d_b), (SELECT max(v) AS top FROM d_b), (SELECT 1), x IN (SELECT a_id FROM d_b) FROM d_a ORDER BY id LIMIT 2;
-- case: duplicate_columns
SELECT id, id, d_a.id, x AS id FROM d_a ORDER BY 1;
-- case: star_and_column
SELECT *, id FROM d_b ORDER BY 1;
-- case: same_expression_twice_distinct
SELECT DISTINCT x + 1, x + 1 FROM d_a ORDER BY x + 1;
-- case: union_names_from_left
SELECT x + 1, s FROM d_a UNION ALL SELECT v, t FROM d_b ORDER BY 1, 2;
-- case: custom_setting_set
SET myapp.user_id = 42;
-- case: custom_setting_show
SHOW myapp.user_id;
-- case: custom_setting_unknown
SHOW myapp.never_set;
-- case: decimal_literals_exact
SELECT 0.1 + 0.2 = 0.3, 1.005 * 2, 2.5 / 2;
-- case: decimal_cast_rounds_half_away
SELECT CAST(2.675 AS DECIMAL(5,2)), CAST(-1.005 AS DECIMAL(5,2)), CAST(1.004 AS DECIMAL(5,2));
-- case: null_concat_chain
SELECT NULL || NULL || 'a', 'a' || NULL, s || NULL FROM d_a ORDER BY id LIMIT 2;
-- case: correlated_non_equality_sum
SELECT id, (SELECT sum(v) FROM d_b WHERE d_b.a_id < d_a.x AND d_b.v > 0) FROM d_a ORDER BY id;
-- case: correlated_non_equality_in_where
SELECT id FROM d_a WHERE (SELECT count(*) FROM d_b WHERE d_b.v > d_a.y) > 3 ORDER BY id;
-- case: correlated_between_exists
SELECT id, EXISTS (SELECT 1 FROM d_b WHERE d_b.v BETWEEN d_a.y AND d_a.y + 100) FROM d_a ORDER BY id;
-- case: correlated_two_outer_columns
SELECT id, (SELECT max(t) FROM d_b WHERE d_b.a_id <> d_a.id AND d_b.a_id > d_a.x) FROM d_a ORDER BY id;
-- case: correlated_disjunction
SELECT id, (SELECT count(*) FROM d_b WHERE d_b.a_id = d_a.id OR d_b.v < d_a.y) FROM d_a ORDER BY id;
-- case: correlated_non_equality_not_in
SELECT id, x NOT IN (SELECT a_id FROM d_b WHERE d_b.v < d_a.y) FROM d_a ORDER BY id;
-- case: correlated_count_plus_one
SELECT id, (SELECT count(*) + 1 FROM d_b WHERE d_b.v < d_a.y) FROM d_a ORDER BY id;
-- case: self_in_select
SELECT id, x IN (SELECT x FROM d_a) FROM d_a ORDER BY id;
-- case: self_not_in_select
SELECT id, x NOT IN (SELECT x FROM d_a WHERE id < 5) FROM d_a ORDER BY id;
-- case: self_in_is_null
SELECT count(*) FROM d_a WHERE (x IN (SELECT x FROM d_a WHERE id > 6)) IS NULL;
-- case: any_same_table
SELECT id FROM d_a WHERE x > ANY (SELECT x FROM d_a WHERE id > 8) ORDER BY id;
-- case: all_same_table
SELECT id FROM d_a WHERE x >= ALL (SELECT x FROM d_a WHERE id < 3) ORDER BY id;
-- case: any_all_in_select
SELECT id, y < ANY (SELECT v FROM d_b), y = ALL (SELECT v FROM d_b WHERE a_id = 1), y <> ALL (SELECT v FROM d_b WHERE v > 150) FROM d_a ORDER BY id;
-- case: all_of_empty
SELECT id, x > ALL (SELECT v FROM d_b WHERE false), x > ANY (SELECT v FROM d_b WHERE false) FROM d_a ORDER BY id;
-- case: any_correlated_non_equality
SELECT id, x < ANY (SELECT a_id FROM d_b WHERE d_b.v > d_a.y) FROM d_a ORDER BY id;
-- case: unary_minus_overflow
SELECT -(y - 9223372036854775807 - 1) FROM d_a WHERE y = 0;
-- case: float_sum_of_literals
SELECT 0.1::float8 + 0.2 = 0.3;
-- case: ctas_sum_bigint
CREATE TABLE d_sum AS SELECT sum(y), count(*) FROM d_a;
-- case: ctas_sum_bigint_read
SELECT * FROM d_sum;
-- case: insert_select_sum_bigint
CREATE TABLE d_tot (t BIGINT);
-- case: insert_select_sum_bigint_run
INSERT INTO d_tot SELECT sum(y) FROM d_a;
-- case: insert_select_sum_bigint_read
SELECT t FROM d_tot;
-- case: decimal_insert_rounds
CREATE TABLE d_dec (v DECIMAL(5,2));
-- case: decimal_insert_rounds_run
INSERT INTO d_dec VALUES (1.005), (-2.675), (3.333);
-- case: decimal_insert_rounds_read
SELECT v FROM d_dec ORDER BY v;
-- case: two_column_primary_keys
CREATE TABLE d_pk2 (a INT PRIMARY KEY, b INT PRIMARY KEY);
-- case: column_and_table_primary_keys
CREATE TABLE d_pk3 (a INT PRIMARY KEY, b INT, PRIMARY KEY (b));
-- case: numeric_precision_out_of_range
CREATE TABLE d_n1 (a NUMERIC(1001, 2));
-- case: numeric_precision_over_38
CREATE TABLE d_n2 (a NUMERIC(100, 2));
-- case: empty_table_name
CREATE TABLE "" (a INT);
-- case: empty_column_name
CREATE TABLE d_e ("" INT);
-- case: unknown_schema
CREATE TABLE s2.d_s (a INT);
-- case: temporary_table
CREATE TEMP TABLE d_tmp (a INT);
-- case: default_in_values_table
CREATE TABLE d_def (id INT GENERATED ALWAYS AS IDENTITY, a INT DEFAULT 5, s TEXT DEFAULT 'x');
-- case: default_in_values
INSERT INTO d_def (a, s) VALUES (DEFAULT, 'one'), (DEFAULT, 'two');
-- case: default_in_values_identity
INSERT INTO d_def VALUES (DEFAULT, 7, DEFAULT);
-- case: default_values
INSERT INTO d_def DEFAULT VALUES;
-- case: default_in_values_read
SELECT id, a, s FROM d_def ORDER BY id;
-- case: insert_fewer_values_table
CREATE TABLE d_short (a INT, b INT DEFAULT 9, c TEXT);
-- case: insert_fewer_values
INSERT INTO d_short VALUES (1);
-- case: insert_fewer_select
INSERT INTO d_short SELECT 2, 3;
-- case: insert_more_values
INSERT INTO d_short VALUES (3, 4, 'x', 5);
-- case: insert_fewer_values_than_listed
INSERT INTO d_short (a, b) VALUES (4);
-- case: insert_select_same_column_twice
INSERT INTO d_short SELECT x, x FROM (VALUES (5), (6)) AS g(x);
-- case: insert_fewer_values_read
SELECT a, b, c FROM d_short ORDER BY a;
-- case: exact_numeric_insert_table
CREATE TABLE d_exact (n NUMERIC(30,2), i INT, b BIGINT);
-- case: exact_numeric_insert
INSERT INTO d_exact (n) VALUES (12345678901234567.55), (-1234567890123456789.12);
-- case: fraction_into_integer_rounds
INSERT INTO d_exact (i, b) VALUES (2.5, 1.5), (3.5, -2.5), (-0.5, 7);
-- case: exact_numeric_insert_read
SELECT n, i, b FROM d_exact ORDER BY n, i;
-- case: exact_numeric_cast
SELECT CAST(12345678901234567.55 AS NUMERIC(30,2)), CAST(-0.125 AS NUMERIC(5,2));
-- case: in_subquery_of_constant
SELECT id, x IN (SELECT 1), x = ANY (SELECT v / 100 FROM d_b) FROM d_a ORDER BY id;
-- case: any_expression_correlated_by_equality
SELECT id, x = ANY (SELECT i.y / 10 FROM d_a AS i WHERE i.id = d_a.id) FROM d_a ORDER BY id;
-- case: qualified_set_target
UPDATE d_exact SET d_exact.i = 1;
-- case: cross_database_reference
INSERT INTO otherdb.public.d_exact (i) VALUES (1);
-- case: abs_of_smallest_bigint
SELECT abs(-9223372036854775807 - 1);
-- case: numeric_cast_does_not_fit
SELECT CAST(999.995 AS NUMERIC(5,2));
-- case: select_list_too_wide
SELECT 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1;
-- case: update_set_default
UPDATE d_def SET a = DEFAULT, s = 'changed' WHERE id = 1;
-- case: update_set_default_read
SELECT id, a, s FROM d_def ORDER BY id;
-- case: update_set_default_no_default
UPDATE d_exact SET i = DEFAULT;
-- case: update_set_default_no_default_read
SELECT count(*), count(i) FROM d_exact;
-- case: any_subquery_in_group_by
SELECT x > ANY (SELECT a_id FROM d_b) AS hit, count(*) FROM d_a GROUP BY 1 ORDER BY 1;
-- case: view_takes_postgres_column_names
CREATE VIEW d_v_agg AS SELECT a_id, count(*), sum(v) FROM d_b GROUP BY a_id;
-- case: view_column_names_read
SELECT * FROM d_v_agg ORDER BY a_id;
-- case: view_columns_by_postgres_names
SELECT a_id, count, sum FROM d_v_agg WHERE count > 1 ORDER BY a_id;
-- case: view_column_list
CREATE VIEW d_v_list (k, total) AS SELECT id, x FROM d_a;
-- case: view_column_list_read
SELECT k, total FROM d_v_list WHERE k < 4 ORDER BY k;
-- case: view_more_names_than_columns
CREATE VIEW d_v_bad (a, b, c) AS SELECT id FROM d_a;
-- case: view_repeated_column
CREATE VIEW d_v_bad AS SELECT id, id FROM d_a;
-- case: view_repeated_column_list
CREATE VIEW d_v_bad (a, a) AS SELECT id, x FROM d_a;
-- case: view_on_view
CREATE VIEW d_v_on_v AS SELECT k FROM d_v_list;
-- case: view_star
CREATE VIEW d_v_star AS SELECT * FROM d_b;
-- case: drop_table_under_view
DROP TABLE d_b;
-- case: drop_view_under_view
DROP VIEW d_v_list;
-- case: drop_column_under_view
ALTER TABLE d_a DROP COLUMN x;
-- case: drop_column_under_star_view
ALTER TABLE d_b DROP COLUMN t;
-- case: replace_view_under_view
CREATE OR REPLACE VIEW d_v_list (k) AS SELECT id FROM d_a;
-- case: views_intact_after_refusals
SELECT count(*) FROM d_v_on_v;
-- case: drop_view_cascade
DROP VIEW d_v_list CASCADE;
-- case: dependent_view_dropped_too
SELECT * FROM d_v_on_v;
-- case: drop_sequence_under_default
CREATE SEQUENCE d_seq;
-- case: table_with_sequence_default
CREATE TABLE d_seq_t (id INT DEFAULT nextval('d_seq'), v INT);
-- case: drop_sequence_used_by_default
DROP SEQUENCE d_seq;
-- case: sequence_default_still_works
INSERT INTO d_seq_t (v) VALUES (1), (2);
-- case: sequence_default_read
SELECT id, v FROM d_seq_t ORDER BY v;
-- case: derived_table_column_names
SELECT * FROM (SELECT count(*), max(x), min(s) FROM d_a) AS q;
-- case: derived_table_column_by_name
SELECT q.max + 1 FROM (SELECT count(*), max(x) FROM d_a) AS q;
-- case: cte_column_names
WITH c AS (SELECT min(y), upper(s) FROM d_a GROUP BY s) SELECT * FROM c ORDER BY 2 NULLS FIRST;
-- case: information_schema_tables
SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'd\_%' AND table_name <> 'd_n2' ORDER BY table_name;
-- case: information_schema_insertable
SELECT table_name, is_insertable_into FROM information_schema.tables WHERE table_schema = 'public' AND table_name LIKE 'd\_%' AND table_name NOT IN ('d_v_star', 'd_n2') ORDER BY table_name;
-- case: information_schema_views
SELECT table_name, check_option, is_updatable, is_insertable_into FROM information_schema.views WHERE table_schema = 'public' AND table_name LIKE 'd\_%' AND table_name NOT IN ('d_v_star', 'd_n2') ORDER BY table_name;
-- case: updatable_view_table
CREATE TABLE d_vw (id INT PRIMARY KEY, v INT);
-- case: updatable_view_view
CREATE VIEW d_vw_v AS SELECT * FROM d_vw;
-- case: updatable_view
INSERT INTO d_vw_v VALUES (1, 1);
-- case: information_schema_columns
SELECT table_name, column_name, ordinal_position, is_nullable, data_type, character_maximum_length, numeric_precision, numeric_precision_radix, numeric_scale, datetime_precision, udt_name, is_identity, identity_generation FROM information_schema.columns WHERE table_schema = 'public' AND table_name IN ('d_a', 'd_b', 'd_def', 'd_exact', 'd_v_agg', 'd_v_star') ORDER BY table_name, ordinal_position;
-- case: information_schema_key_constraints
CREATE TABLE d_keys (id INT PRIMARY KEY, code VARCHAR(8) UNIQUE, a_id INT REFERENCES d_a (id) ON DELETE CASCADE, d DATE, ts TIMESTAMPTZ, r REAL, UNIQUE (d, r));
-- case: information_schema_table_constraints
SELECT constraint_name, table_name, constraint_type, is_deferrable, initially_deferred, enforced, nulls_distinct FROM information_schema.table_constraints WHERE table_schema = 'public' AND table_name LIKE 'd\_%' AND constraint_type <> 'CHECK' ORDER BY constraint_name;
-- case: information_schema_key_column_usage
SELECT constraint_name, table_name, column_name, ordinal_position, position_in_unique_constraint FROM information_schema.key_column_usage WHERE table_schema = 'public' AND table_name LIKE 'd\_%' ORDER BY constraint_name, ordinal_position;
-- case: information_schema_referential_constraints
SELECT constraint_name, unique_constraint_name, match_option, update_rule, delete_rule FROM information_schema.referential_constraints WHERE constraint_schema = 'public' AND constraint_name LIKE 'd\_%' ORDER BY constraint_name;
-- case: information_schema_constraint_column_usage
SELECT table_name, column_name, constraint_name FROM information_schema.constraint_column_usage WHERE table_schema = 'public' AND constraint_name LIKE 'd_keys%' ORDER BY constraint_name, column_name;
-- case: information_schema_key_types
SELECT column_name, data_type, character_maximum_length, character_octet_length, datetime_precision, numeric_precision FROM information_schema.columns WHERE table_name = 'd_keys' ORDER BY ordinal_position;
-- case: information_schema_sequences
SELECT sequence_name, data_type, numeric_precision, start_value, minimum_value, maximum_value, increment, cycle_option FROM information_schema.sequences WHERE sequence_schema = 'public' AND sequence_name LIKE 'd\_%' ORDER BY sequence_name;
-- case: information_schema_schemata
SELECT schema_name FROM information_schema.schemata WHERE schema_name IN ('public', 'information_schema') ORDER BY schema_name;
-- case: returning_table
CREATE TABLE d_ret (id INT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v INT DEFAULT 7, s TEXT);
-- case: insert_returning_star
INSERT INTO d_ret (s) VALUES ('a'), ('b'), (NULL) RETURNING *;
-- case: insert_returning_expressions
INSERT INTO d_ret (v, s) VALUES (-3, 'c') RETURNING id, v * 2, v * 2 AS dbl, upper(s), id, v IS NULL;
-- case: update_returning
UPDATE d_ret SET v = v + 1 WHERE id <= 2 RETURNING id, v, d_ret.s;
-- case: update_returning_alias
UPDATE d_ret AS r SET v = 0 WHERE r.s IS NULL RETURNING r.*;
-- case: delete_returning
DELETE FROM d_ret WHERE v > 7 RETURNING s, id;
-- case: delete_returning_nothing
DELETE FROM d_ret WHERE id = 100 RETURNING id;
-- case: upsert_returning
INSERT INTO d_ret (id, v) VALUES (3, 30), (40, 40) ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING id, v;
-- case: returning_error_writes_nothing
DELETE FROM d_ret RETURNING 1 / (v - v);
-- case: returning_error_read
SELECT id, v, s FROM d_ret ORDER BY id;
-- case: returning_unknown_column
INSERT INTO d_ret (s) VALUES ('x') RETURNING nosuch;
-- case: overriding_table
CREATE TABLE d_ovr (id INT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v INT);
-- case: identity_always_refuses_value
INSERT INTO d_ovr (id, v) VALUES (50, 1);
-- case: overriding_system_value
INSERT INTO d_ovr (id, v) OVERRIDING SYSTEM VALUE VALUES (50, 1) RETURNING *;
-- case: overriding_user_value
INSERT INTO d_ovr (id, v) OVERRIDING USER VALUE VALUES (70, 2), (80, 3) RETURNING *;
-- case: overriding_user_value_select
INSERT INTO d_ovr OVERRIDING USER VALUE SELECT id, x FROM d_a WHERE id < 3 RETURNING *;
-- case: overriding_outside_insert
SELECT 1 OVERRIDING SYSTEM VALUE;
-- case: overriding_read
SELECT id, v FROM d_ovr ORDER BY id;
-- case: alter_table
CREATE TABLE d_alt (id INT PRIMARY KEY, v INT, s TEXT, f DOUBLE PRECISION);
-- case: alter_table_rows
INSERT INTO d_alt VALUES (1, 10, '42', 2.25), (2, NULL, 'x', -1.75), (3, -3, '-7', 0);
-- case: add_column_default_fills_rows
ALTER TABLE d_alt ADD COLUMN d INT DEFAULT 5;
-- case: add_column_not_null_default
ALTER TABLE d_alt ADD COLUMN n TEXT NOT NULL DEFAULT 'none';
-- case: add_column_not_null_without_default
ALTER TABLE d_alt ADD COLUMN m INT NOT NULL;
-- case: added_columns_read
SELECT id, v, s, f, d, n FROM d_alt ORDER BY id;
-- case: set_not_null_with_nulls
ALTER TABLE d_alt ALTER COLUMN v SET NOT NULL;
-- case: set_not_null
ALTER TABLE d_alt ALTER COLUMN d SET NOT NULL;
-- case: set_not_null_enforced
INSERT INTO d_alt (id, d) VALUES (4, NULL);
-- case: drop_not_null_primary_key
ALTER TABLE d_alt ALTER COLUMN id DROP NOT NULL;
-- case: drop_not_null
ALTER TABLE d_alt ALTER COLUMN d DROP NOT NULL;
-- case: drop_not_null_allows_null
INSERT INTO d_alt (id, d) VALUES (4, NULL);
-- case: alter_type_float_to_numeric
ALTER TABLE d_alt ALTER COLUMN f TYPE NUMERIC(6,2);
-- case: alter_type_text_to_int_needs_using
ALTER TABLE d_alt ALTER COLUMN s TYPE INT;
-- case: alter_type_using
ALTER TABLE d_alt ALTER COLUMN s TYPE INT USING CASE WHEN s = 'x' THEN -1 ELSE CAST(s AS INT) END;
-- case: alter_type_widen
ALTER TABLE d_alt ALTER COLUMN v TYPE BIGINT;
-- case: altered_read
SELECT id, v, s, f, d, n FROM d_alt ORDER BY id;
-- case: altered_types
SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable FROM information_schema.columns WHERE table_name = 'd_alt' ORDER BY ordinal_position;
-- case: altered_arithmetic
SELECT sum(v), sum(s), sum(f) FROM d_alt;
-- case: rename_table
ALTER TABLE d_alt RENAME TO d_alt2;
-- case: renamed_table_read
SELECT count(*) FROM d_alt2;
-- case: old_name_gone
SELECT count(*) FROM d_alt;
-- case: rename_to_taken_name
ALTER TABLE d_alt2 RENAME TO d_a;
-- case: create_index
CREATE INDEX d_a_s_idx ON d_a (s);
-- case: create_index_unnamed
CREATE INDEX ON d_b (a_id, v);
-- case: create_index_name_taken
CREATE INDEX d_a_s_idx ON d_b (t);
-- case: create_index_name_of_table
CREATE INDEX d_b ON d_a (x);
-- case: create_index_if_not_exists
CREATE INDEX IF NOT EXISTS d_a_s_idx ON d_b (t);
-- case: create_index_unknown_column
CREATE INDEX d_bad_idx ON d_a (nosuch);
-- case: create_index_unknown_table
CREATE INDEX d_bad_idx ON d_nosuch (x);
-- case: create_table_named_like_index
CREATE TABLE d_a_s_idx (a INT);
-- case: create_unique_index_duplicates
CREATE UNIQUE INDEX d_a_s_key_idx ON d_a (s);
-- case: create_unique_index
CREATE UNIQUE INDEX d_a_id_x_idx ON d_a (id, x);
-- case: unique_index_enforced
INSERT INTO d_b VALUES (1, 1, 1, 'dup');
-- case: drop_index_of_primary_key
DROP INDEX d_a_pkey;
-- case: drop_index
DROP INDEX d_a_s_idx;
-- case: drop_index_again
DROP INDEX d_a_s_idx;
-- case: drop_index_if_exists
DROP INDEX IF EXISTS d_a_s_idx;
-- case: drop_unique_index
DROP INDEX d_a_id_x_idx;
-- case: drop_generated_index_name
DROP INDEX d_b_a_id_v_idx;
-- case: create_schema
CREATE SCHEMA d_schema;
-- case: merge_target
CREATE TABLE d_stock (item TEXT PRIMARY KEY, qty INT NOT NULL, note TEXT);
-- case: merge_target_rows
INSERT INTO d_stock VALUES ('apple', 5, NULL), ('pear', 0, 'x'), ('plum', 3, NULL);
-- case: merge_source
CREATE TABLE d_moves (item TEXT, delta INT);
-- case: merge_source_rows
INSERT INTO d_moves VALUES ('apple', 2), ('pear', -0), ('kiwi', 4), ('fig', NULL), ('plum', -3);
-- case: merge_update_delete_insert
MERGE INTO d_stock AS s USING d_moves AS m ON s.item = m.item WHEN MATCHED AND s.qty + m.delta <= 0 THEN DELETE WHEN MATCHED THEN UPDATE SET qty = s.qty + m.delta, note = 'moved' WHEN NOT MATCHED AND m.delta IS NOT NULL THEN INSERT (item, qty) VALUES (m.item, m.delta);
-- case: merge_read
SELECT item, qty, note FROM d_stock ORDER BY item;
-- case: merge_subquery_source
MERGE INTO d_stock USING (SELECT 'apple' AS item, 10 AS q UNION ALL SELECT 'lime', 1) AS src ON d_stock.item = src.item WHEN MATCHED THEN UPDATE SET qty = src.q WHEN NOT MATCHED THEN INSERT VALUES (src.item, src.q, DEFAULT);
-- case: merge_subquery_read
SELECT item, qty, note FROM d_stock ORDER BY item;
-- case: merge_twice_same_row
MERGE INTO d_stock USING (SELECT 'apple' AS item UNION ALL SELECT 'apple') AS src ON d_stock.item = src.item WHEN MATCHED THEN UPDATE SET qty = qty + 1;
-- case: merge_insert_duplicate_key
MERGE INTO d_stock USING (SELECT 'new' AS item UNION ALL SELECT 'new') AS src ON d_stock.item = src.item WHEN NOT MATCHED THEN INSERT VALUES (src.item, 1);
-- case: merge_not_null
MERGE INTO d_stock USING (SELECT 'nul' AS item) AS src ON d_stock.item = src.item WHEN NOT MATCHED THEN INSERT (item) VALUES (src.item);
-- case: merge_after_errors_read
SELECT item, qty, note FROM d_stock ORDER BY item;
-- case: merge_insert_in_matched
MERGE INTO d_stock USING d_moves AS m ON d_stock.item = m.item WHEN MATCHED THEN INSERT VALUES ('a', 1);
-- case: derived_repeated_names
SELECT * FROM (SELECT x + 1, x * 2, 1, 2 FROM d_a WHERE id = 1) AS q;
-- case: derived_repeated_columns
SELECT * FROM (SELECT id, x, x FROM d_a WHERE id < 3) AS q ORDER BY 1;
-- case: derived_fewer_alias_names
SELECT * FROM (SELECT id, x FROM d_a WHERE id < 3) AS q (p) ORDER BY 1;
-- case: view_repeated_derived_names
CREATE VIEW d_v_rep AS SELECT * FROM (SELECT x + 1, x * 2 FROM d_a) AS q;
-- case: ctas_repeated_derived_names
CREATE TABLE d_ctas_rep AS SELECT * FROM (SELECT count(*), count(x) FROM d_a) AS q;
-- case: view_fewer_names
CREATE VIEW d_v_few (a, b) AS SELECT id, x, x + 1 FROM d_a;
-- case: view_fewer_names_read
SELECT * FROM d_v_few WHERE a < 3 ORDER BY a;
-- case: check_names
CREATE TABLE d_chk (a INT, b INT, CHECK (a > 0), CHECK (a < b), c INT CHECK (c > a));
-- case: check_names_added
ALTER TABLE d_chk ADD CHECK (b < 100);
-- case: check_names_listed
SELECT constraint_name FROM information_schema.table_constraints WHERE table_name = 'd_chk' AND constraint_type = 'CHECK' AND constraint_name LIKE 'd_chk%' ORDER BY 1;
-- case: rename_keeps_constraint_names
CREATE TABLE d_ren (id INT PRIMARY KEY, u INT UNIQUE);
-- case: rename_keeps_constraint_names_run
ALTER TABLE d_ren RENAME TO d_ren2;
-- case: rename_keeps_constraint_names_read
SELECT constraint_name, constraint_type FROM information_schema.table_constraints WHERE table_name = 'd_ren2' AND constraint_type <> 'CHECK' ORDER BY 1;
-- case: alter_added_column_not_there_yet
ALTER TABLE d_ren2 ADD COLUMN z INT DEFAULT 3, ALTER COLUMN z TYPE TEXT;
-- case: update_identity_default
UPDATE d_ovr SET id = DEFAULT WHERE v = 2 RETURNING v;
-- case: update_identity_default_read
SELECT count(*), count(DISTINCT id) FROM d_ovr;
-- case: merge_not_matched_reads_target
MERGE INTO d_stock AS s USING (SELECT 'zz' AS item) AS src ON s.item = src.item WHEN NOT MATCHED THEN INSERT VALUES (src.item, s.qty);
-- case: merge_identity_default
MERGE INTO d_ovr USING (SELECT 9 AS v) AS src ON d_ovr.v = src.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (DEFAULT, src.v);
-- case: merge_identity_default_read
SELECT count(*) FROM d_ovr WHERE v = 9;
-- case: check_name_taken_by_explicit
CREATE TABLE d_chk2 (a INT CHECK (a < 10), CONSTRAINT d_chk2_a_check CHECK (a <> 5));
-- case: upsert_returning_order_table
CREATE TABLE d_rt (id INT PRIMARY KEY, v TEXT, u INT UNIQUE);
-- case: upsert_returning_order_rows
INSERT INTO d_rt VALUES (2, 'old', 20), (5, 'old5', 50);
-- case: upsert_returning_in_proposed_order
INSERT INTO d_rt VALUES (1, 'a', 10), (2, 'b', 21), (3, 'c', 30), (5, 'e', 51), (4, 'd', 40) ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING id, v, u;
-- case: upsert_returning_unique_target_order
INSERT INTO d_rt VALUES (7, 'x', 20), (6, 'y', 60), (8, 'z', NULL) ON CONFLICT (u) DO UPDATE SET v = excluded.v RETURNING id, v, u;
-- case: float_division_by_zero
SELECT 1.5::float8 / 0;
-- case: float_column_division_by_zero
SELECT id, x::float8 / NULLIF(x, 0) FROM d_a ORDER BY id;
-- case: float_column_division_by_zero_row
SELECT x::float8 / (x - x) FROM d_a WHERE id = 1;
-- case: numeric_division_digits
SELECT 1.0 / 3, 10.0 / 3, 2.0 / 3, -2.0 / 3, 1 / 3.0, 100000.0 / 7, 1.25 / 3;
-- case: numeric_division_by_zero
SELECT 1.5 / 0.0;
-- case: numeric_column_division_rounds
SELECT id, n / 3, n / 7, n / -0.3 FROM d_a WHERE n IS NOT NULL ORDER BY id;
-- case: numeric_column_division_by_zero_column
SELECT n / (n - n) FROM d_a WHERE id = 1;
-- case: numeric_average_digits
SELECT avg(n), avg(n) FILTER (WHERE n > 0), sum(n) / count(n) FROM d_a;
-- case: numeric_average_grouped
SELECT s, avg(n) FROM d_a GROUP BY s ORDER BY s NULLS FIRST;
-- case: numeric_average_window
SELECT id, avg(n) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM d_a ORDER BY id;
-- case: exponent_literals
SELECT 1e2, 1.5e3, 2E-3, 1e300, 1e-50, -2.5e2, 12345678901234567890123456789012345678901234;
-- case: exponent_literal_in_arithmetic
SELECT 1e3 + 0.5, 2.5e-1 * 4, 1e20 + 1;
-- case: float_compared_with_numeric_literal
SELECT x, x > 0.0, x = 0.3, x < 1e-15 FROM (VALUES (1e-20::float8), (0.3::float8), (1e20::float8), (-1e-300::float8)) v(x) ORDER BY x;
-- case: float_in_list_between_numeric
SELECT x FROM (VALUES (0.1::float8), (0.25::float8), (1e20::float8)) v(x) WHERE x IN (0.1, 0.25) OR x BETWEEN 1e19 AND 1e21 ORDER BY x;
-- case: float_coalesce_case_numeric
SELECT COALESCE(x, 0.5), CASE WHEN x > 1 THEN x ELSE 0.5 END, GREATEST(x, 0.5), LEAST(x, 2.5), NULLIF(x, 0.3) FROM (VALUES (1e20::float8), (NULL::float8), (0.3::float8)) v(x) ORDER BY 1;
-- case: numeric_column_against_float
SELECT id, n = n::float8, n > 1.5::float8 FROM d_a WHERE n IS NOT NULL ORDER BY id;
-- case: union_float_and_numeric
SELECT n FROM d_a WHERE id < 3 UNION ALL SELECT 1e20::float8 UNION ALL SELECT 0.5 ORDER BY 1;
-- case: union_distinct_float_numeric_literal
SELECT 2.5::float8 UNION SELECT 2.5 UNION SELECT 1e-20::float8 ORDER BY 1;
-- case: real_compared_with_numeric_literal
SELECT 0.1::real = 0.1, 0.5::real = 0.5;
-- case: numeric_literal_into_float_column
CREATE TABLE d_fl (id INT PRIMARY KEY, f DOUBLE PRECISION, r REAL, n NUMERIC(12,4));
-- case: numeric_literal_into_float_column_rows
INSERT INTO d_fl VALUES (1, 0.1, 0.1, 0.1), (2, 1e-10, 2.5, 1.00005), (3, 1e10, -0.5, -1.00005);
-- case: numeric_literal_into_float_column_read
SELECT id, f, r::float8, n, f * 3, n * 3, n / 3, f + n FROM d_fl ORDER BY id;
-- case: numeric_literal_filters_float_column
SELECT id FROM d_fl WHERE f > 0.0 AND f <= 1e10 AND r <> 0.1 ORDER BY id;
-- case: numeric_money_sum
SELECT sum(n * 1.1), sum(n) * 1.1, round(sum(n) / 3, 2) FROM d_a;
-- case: percentile_with_numeric_fraction
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM d_a;
-- case: generate_series_in_select_list
SELECT generate_series(1, 3);
-- case: generate_series_in_select_list_beside_columns
SELECT id, generate_series(1, 2) AS k FROM d_a WHERE id < 4 ORDER BY id, k;
-- case: generate_series_in_select_list_per_row
SELECT id, generate_series(1, id) FROM d_a WHERE id <= 3 ORDER BY 1, 2;
-- case: generate_series_in_select_list_expression
SELECT generate_series(1, 3) * 10 AS t ORDER BY t;
-- case: two_generate_series_in_lockstep
SELECT generate_series(1, 3) AS a, generate_series(1, 2) AS b ORDER BY a;
-- case: generate_series_timestamps_in_select_list
SELECT generate_series('2026-01-01'::timestamp, '2026-01-02'::timestamp, interval '12 hours') AS t ORDER BY t;
-- case: generate_series_in_select_list_of_subquery
SELECT count(*), sum(g) FROM (SELECT generate_series(1, 10) AS g) q;
-- case: generate_series_in_select_list_over_aggregate
SELECT generate_series(1, max(x)) AS g FROM d_a ORDER BY g;
-- case: on_conflict_nothing_any_key_table
CREATE TABLE d_ocn (id INT PRIMARY KEY, e TEXT UNIQUE, c INT, UNIQUE (c));
-- case: on_conflict_nothing_any_key_rows
INSERT INTO d_ocn VALUES (1, 'a', 10), (2, 'b', 20);
-- case: on_conflict_nothing_skips_unique_conflict
INSERT INTO d_ocn VALUES (3, 'a', 30), (4, 'd', 40), (5, 'e', 20), (2, 'z', 99) ON CONFLICT DO NOTHING RETURNING id, e, c;
-- case: on_conflict_nothing_within_statement
INSERT INTO d_ocn VALUES (6, 'f', 60), (7, 'f', 70), (6, 'g', 80), (8, NULL, NULL), (9, NULL, NULL) ON CONFLICT DO NOTHING RETURNING id;
-- case: on_conflict_nothing_any_key_read
SELECT * FROM d_ocn ORDER BY id;
-- case: on_conflict_nothing_without_keys
CREATE TABLE d_ocn2 (a INT);
-- case: on_conflict_nothing_without_keys_insert
INSERT INTO d_ocn2 VALUES (1), (1) ON CONFLICT DO NOTHING;
-- case: on_conflict_nothing_without_keys_read
SELECT count(*) FROM d_ocn2;
-- case: on_conflict_update_needs_target
INSERT INTO d_ocn VALUES (1, 'x', 1) ON CONFLICT DO UPDATE SET e = 'y';
-- case: float_and_numeric_same_value_equal
SELECT f = n, n::float8, f > n, f IN (n, 1.5) FROM (VALUES (123456789.123::float8, 123456789.123::numeric(20,3))) v(f, n);
-- case: union_float_numeric_same_value_once
SELECT f FROM (VALUES (123456789.123::float8)) a(f) UNION SELECT n FROM (VALUES (123456789.123::numeric(20,3))) b(n);
-- case: numeric_divided_by_literal_exact
SELECT 0.3::numeric(10,2) / 0.1, n / 0.1, n * 1.1, n - 0.05, n % 0.5 FROM d_a WHERE n IS NOT NULL ORDER BY id;
-- case: numeric_division_in_values
SELECT * FROM (VALUES (1, 10::numeric(10,2) / 4), (2, 1::numeric(10,2) / 8)) v(i, q) ORDER BY i;
-- case: numeric_quotient_compared
SELECT id FROM d_a WHERE n / 4 IN (0.375, 2.525) OR COALESCE(n / 2, 0) = 0.75 ORDER BY id;
-- case: float_nan_divided_by_zero
SELECT 'NaN'::float8 / 0;
-- case: generate_series_in_where_refused
SELECT 1 WHERE generate_series(1, 2) > 1;
