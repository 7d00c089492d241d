// Runs one SQL statement in an in-memory DuckDB and prints the rows as JSON.
// Used by thresher's tests to read the lake with an independent Parquet reader:
//   node testdata/duckdb/query.mjs "SELECT count(*) AS n FROM 'LAKE/raw/**/*.parquet'"
import { DuckDBInstance } from '@duckdb/node-api';

const sql = process.argv[2];
if (!sql) {
  console.error('usage: node query.mjs SQL');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
const reader = await conn.runAndReadAll(sql);
const rows = reader.getRowObjectsJson();
process.stdout.write(JSON.stringify(rows) + '\n');
