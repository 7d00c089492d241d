package schemas_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"

	"github.com/thresher-ml/thresher/schemas"
)

// TestArrowMatchesRowType checks that each table's Arrow schema and Go row
// type name the same columns in the same order, with the same nullability.
func TestArrowMatchesRowType(t *testing.T) {
	for _, c := range []struct {
		name  string
		arrow *arrow.Schema
		row   any
	}{
		{schemas.TableRaw, schemas.RawSchema, new(schemas.Raw)},
		{schemas.TableDLQ, schemas.DLQSchema, new(schemas.DLQ)},
		{schemas.TableGaps, schemas.GapsSchema, new(schemas.Gap)},
	} {
		pq := parquet.SchemaOf(c.row)
		fields := pq.Fields()
		if len(fields) != c.arrow.NumFields() {
			t.Fatalf("%s: %d parquet columns, %d arrow fields", c.name, len(fields), c.arrow.NumFields())
		}
		for i, f := range fields {
			a := c.arrow.Field(i)
			if f.Name() != a.Name {
				t.Errorf("%s column %d: parquet %q, arrow %q", c.name, i, f.Name(), a.Name)
			}
			if f.Optional() != a.Nullable {
				t.Errorf("%s column %q: parquet optional=%v, arrow nullable=%v", c.name, a.Name, f.Optional(), a.Nullable)
			}
			if f.Leaf() {
				continue
			}
			// A list of structs: the list's element against the Arrow struct.
			lt, ok := a.Type.(*arrow.ListType)
			if l := f.Type().LogicalType(); !ok || l == nil || l.String() != "LIST" {
				t.Errorf("%s column %q: parquet group %v, arrow %v; want a list on both sides", c.name, a.Name, f.Type(), a.Type)
				continue
			}
			st, ok := lt.Elem().(*arrow.StructType)
			elem := f.Fields()[0].Fields()[0]
			if !ok || lt.ElemField().Nullable != elem.Optional() || len(elem.Fields()) != st.NumFields() {
				t.Errorf("%s column %q: parquet element %v, arrow %v", c.name, a.Name, elem, lt.ElemField())
				continue
			}
			for j, g := range elem.Fields() {
				if af := st.Field(j); af.Name != g.Name() || af.Nullable != g.Optional() {
					t.Errorf("%s column %q field %d: parquet %q optional=%v, arrow %q nullable=%v",
						c.name, a.Name, j, g.Name(), g.Optional(), af.Name, af.Nullable)
				}
			}
		}
	}
}

func TestReasonsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range schemas.Reasons {
		if r == "" || seen[r] {
			t.Fatalf("reason %q empty or repeated", r)
		}
		seen[r] = true
	}
	if len(seen) != 8 {
		t.Fatalf("%d reasons", len(seen))
	}
}
