-- The differential schema: small tables with NULLs, duplicates and negative numbers.
CREATE TABLE d_a (id INT PRIMARY KEY, x INT, y BIGINT, s TEXT, b BOOLEAN, n DECIMAL(10,2));
CREATE TABLE d_b (id INT PRIMARY KEY, a_id INT, v INT, t TEXT);
INSERT INTO d_a VALUES
  (1, 1, 10, 'apple', true, 1.50), (2, 2, 20, 'banana', false, -2.25), (3, NULL, 30, 'cherry', NULL, 0.00),
  (4, 4, NULL, NULL, true, 10.10), (5, -5, -50, 'apple', false, NULL), (6, 2, 20, 'banana', true, 2.50),
  (7, 0, 0, '', false, -0.50), (8, 8, 80, 'date', NULL, 8.75), (9, NULL, NULL, NULL, NULL, NULL),
  (10, 3, -30, 'Apple', true, 3.33), (11, 2, 25, 'fig', false, 1.50), (12, -1, 5, 'grape', true, -7.77);
INSERT INTO d_b VALUES
  (1, 1, 100, 'one'), (2, 1, 200, 'two'), (3, 2, NULL, 'three'), (4, 4, 400, NULL), (5, NULL, 500, 'five'),
  (6, 99, 600, 'six'), (7, 5, -700, 'seven'), (8, 2, 100, 'eight'), (9, 8, 0, ''), (10, 12, 2, 'ten');
