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
