package cli

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// applyEnv sets the fields of the struct *v from environment variables
// named prefix + the field's yaml key path in upper case, joined by "_"
// (THRESHER_CURATE_DEDUP_THRESHOLD for curate's dedup.threshold). Lists are
// comma-separated; durations as in time.ParseDuration; types with
// UnmarshalText parse themselves. It returns one message per variable that
// does not parse, and ignores variables that name no field.
func applyEnv(prefix string, v any, lookup func(string) (string, bool)) []string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var errs []string
	walkYAML(reflect.ValueOf(v).Elem(), prefix, func(name string, f reflect.Value) {
		s, ok := lookup(name)
		if !ok {
			return
		}
		if err := setFromString(f, s); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	})
	return errs
}

// envNames lists the variables applyEnv reads for *v, sorted.
func envNames(prefix string, v any) []string {
	var names []string
	walkYAML(reflect.ValueOf(v).Elem(), prefix, func(name string, _ reflect.Value) { names = append(names, name) })
	sort.Strings(names)
	return names
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// walkYAML calls fn for every settable leaf field of the struct s that has
// a yaml key, with its variable name; nested structs extend the name.
func walkYAML(s reflect.Value, prefix string, fn func(name string, f reflect.Value)) {
	t := s.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || key == "" || key == "-" {
			continue
		}
		name := prefix + strings.ToUpper(key)
		f := s.Field(i)
		if f.Kind() == reflect.Struct && !reflect.PointerTo(f.Type()).Implements(textUnmarshaler) && f.Type() != reflect.TypeFor[time.Time]() {
			walkYAML(f, name+"_", fn)
			continue
		}
		fn(name, f)
	}
}

// setFromString parses s into the field f.
func setFromString(f reflect.Value, s string) error {
	if f.CanAddr() && f.Addr().Type().Implements(textUnmarshaler) {
		return f.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	if f.Kind() == reflect.Pointer { // an optional setting: *bool, say
		v := reflect.New(f.Type().Elem())
		if err := setFromString(v.Elem(), s); err != nil {
			return err
		}
		f.Set(v)
		return nil
	}
	s = strings.TrimSpace(s)
	switch {
	case f.Type() == reflect.TypeFor[time.Duration]():
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 500ms or 2m", s)
		}
		f.SetInt(int64(d))
		return nil
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		f.Set(reflect.ValueOf(splitList(s)).Convert(f.Type()))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a non-negative whole number", s)
		}
		f.SetUint(n)
	case reflect.Float32, reflect.Float64:
		x, err := strconv.ParseFloat(s, f.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", f.Type())
	}
	return nil
}
