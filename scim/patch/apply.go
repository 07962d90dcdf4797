package patch

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/rosterd/roster/scim/filter"
	"github.com/rosterd/roster/scim/schema"
	"github.com/rosterd/roster/scim/scimerr"
)

// patcher applies operations to doc, a private copy of the resource.
type patcher struct {
	rt  schema.ResourceType
	doc map[string]any
	// except, for ApplyExcept, is the attribute whose operations become
	// edits; index is the operation being applied, and unsplit marks one
	// that cannot become an Edit.
	except  *schema.Attribute
	index   int
	edits   []Edit
	unsplit bool
}

func (p *patcher) apply(op Operation) *scimerr.Error {
	var val any
	if len(op.Value) > 0 {
		if err := json.Unmarshal(op.Value, &val); err != nil {
			return scimerr.InvalidSyntax(`"value" is not valid JSON: ` + jsonProblem(err))
		}
	}
	if op.Path == "" {
		m, ok := val.(map[string]any)
		if !ok {
			return scimerr.InvalidValue(fmt.Sprintf("an %q without a path needs an object of attributes as its value, got %s", op.Op, kind(val)))
		}
		return p.applyObject(op.Op, "", m)
	}
	path, err := filter.ParsePath(op.Path)
	if err != nil {
		return scimerr.InvalidPath(err.Error())
	}
	return p.applyPath(op.Op, path, val, op.Op == OpRemove && len(op.Value) > 0, false)
}

// applyObject applies a path-less add or replace: each key of m is a path
// (relative to the extension urn when urn is not empty).
func (p *patcher) applyObject(op, urn string, m map[string]any) *scimerr.Error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // the same request fails the same way every time
	for _, k := range keys {
		v := m[k]
		if urn == "" {
			if strings.EqualFold(k, "schemas") {
				continue
			}
			if ext, ok := p.extension(k); ok {
				if err := p.applyExtension(op, ext, v); err != nil {
					return err
				}
				continue
			}
		}
		full := k
		if urn != "" {
			full = urn + ":" + k
		}
		path, err := filter.ParsePath(full)
		if err != nil {
			return scimerr.InvalidPath(fmt.Sprintf("the value's key %q is not an attribute path: %v", clip(k), err))
		}
		if err := p.applyPath(op, path, v, false, true); err != nil {
			return err
		}
	}
	return nil
}

// applyExtension applies op to a whole extension, given as an object.
func (p *patcher) applyExtension(op, ext string, v any) *scimerr.Error {
	if op == OpRemove || v == nil {
		if op != OpAdd {
			deleteKey(p.doc, ext)
		}
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return scimerr.InvalidValue(fmt.Sprintf("the value of %s must be an object of its attributes, got %s", ext, kind(v)))
	}
	return p.applyObject(op, ext, m)
}

// extension returns the canonical URN of the resource type's extension
// called name.
func (p *patcher) extension(name string) (string, bool) {
	for _, e := range p.rt.Extensions {
		if strings.EqualFold(e.Schema, name) {
			return e.Schema, true
		}
	}
	return "", false
}

// applyPath applies op to path. withValue marks a remove that carries a
// value; pathless marks a key of a path-less value, where unchanged
// read-only attributes are ignored.
func (p *patcher) applyPath(op string, path *filter.Path, val any, withValue, pathless bool) *scimerr.Error {
	if path.Filter == nil && path.Attr.Sub == "" {
		if ext, ok := p.extension(path.Attr.String()); ok {
			return p.applyExtension(op, ext, val)
		}
	}
	a, owner, ok := p.rt.Lookup(path.Attr.URN, path.Attr.Name, "")
	if !ok {
		if path.Attr.URN == "" {
			return scimerr.InvalidPath(fmt.Sprintf("%s has no attribute %q", p.rt.Name, clip(path.Attr.Name)))
		}
		return scimerr.InvalidPath(fmt.Sprintf("%s has no attribute %q in schema %q", p.rt.Name, clip(path.Attr.Name), clip(path.Attr.URN)))
	}
	var sub *schema.Attribute
	subName := path.Attr.Sub
	if path.Filter != nil {
		if !a.MultiValued {
			return scimerr.InvalidPath(fmt.Sprintf("%s is single-valued; a value filter needs a multi-valued attribute", a.Name))
		}
		if err := checkFilter(a, path.Filter); err != nil {
			return err
		}
		subName = path.Sub
	}
	if subName != "" {
		if sub, ok = a.Sub(subName); !ok {
			return scimerr.InvalidPath(fmt.Sprintf("%s has no sub-attribute %q", a.Name, clip(subName)))
		}
	}
	t := &target{p: p, attr: a, sub: sub, owner: owner, filter: path.Filter, text: pathText(a, path, sub)}
	if readOnly(a, sub) {
		if pathless && (a.Name == "meta" || reflect.DeepEqual(normal(t.targeted()), normal(val))) {
			return nil
		}
		return scimerr.Mutability(fmt.Sprintf("%s is read-only", t.text))
	}
	if sub != nil && sub.Mutability == schema.Immutable && op != OpAdd {
		return scimerr.Mutability(fmt.Sprintf("%s is immutable; add or remove the whole value instead", t.text))
	}
	if p.except != nil && a == p.except {
		return p.edit(op, t, val, withValue)
	}
	switch op {
	case OpRemove:
		if withValue && path.Filter == nil && sub == nil && a.MultiValued {
			return t.removeValues(val)
		}
		return t.remove()
	case OpReplace:
		if val == nil {
			return t.remove()
		}
		return t.replace(val)
	default:
		if val == nil {
			return nil
		}
		return t.add(val)
	}
}

// pathText names the target in error details with the schema's spelling.
func pathText(a *schema.Attribute, path *filter.Path, sub *schema.Attribute) string {
	s := a.Name
	if path.Filter != nil {
		s += "[" + filter.Format(path.Filter) + "]"
	}
	if sub != nil {
		s += "." + sub.Name
	}
	return s
}

func readOnly(a, sub *schema.Attribute) bool {
	return a.Mutability == schema.ReadOnly || sub != nil && sub.Mutability == schema.ReadOnly
}

// normal makes values comparable with reflect.DeepEqual across the forms
// JSON can give them: a single value and a one-element array are equal.
func normal(v any) any {
	if s, ok := v.([]any); ok && len(s) == 1 {
		return s[0]
	}
	return v
}

// target is the resolved destination of one operation.
type target struct {
	p      *patcher
	attr   *schema.Attribute
	sub    *schema.Attribute // nil unless a sub-attribute is targeted
	owner  string            // URN of the schema attr belongs to
	filter filter.Expr       // nil unless the path has a value filter
	text   string
}

// container returns the object holding attr: the resource itself, or its
// extension object, created when create is set.
func (t *target) container(create bool) map[string]any {
	if strings.EqualFold(t.owner, t.p.rt.Schema) {
		return t.p.doc
	}
	k, v, ok := lookupKey(t.p.doc, t.owner)
	if m, isMap := v.(map[string]any); ok && isMap {
		return m
	}
	if !create {
		return nil
	}
	if ok {
		delete(t.p.doc, k)
	}
	m := map[string]any{}
	t.p.doc[t.owner] = m
	return m
}

// current returns the attribute's value.
func (t *target) current() any {
	c := t.container(false)
	if c == nil {
		return nil
	}
	_, v, _ := lookupKey(c, t.attr.Name)
	return v
}

// targeted returns the value the path names, when it names one value: the
// attribute's, or the sub-attribute's of a single-valued complex
// attribute.
func (t *target) targeted() any {
	v := t.current()
	if t.sub == nil || t.attr.MultiValued {
		return v
	}
	m, _ := v.(map[string]any)
	_, sv, _ := lookupKey(m, t.sub.Name)
	return sv
}

func (t *target) set(v any) {
	c := t.container(true)
	setKey(c, t.attr.Name, v)
}

func (t *target) unset() {
	if c := t.container(false); c != nil {
		deleteKey(c, t.attr.Name)
	}
}

// values returns the current values of a multi-valued attribute.
func (t *target) values() []any {
	v := t.current()
	if s, ok := v.([]any); ok {
		return s
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func (t *target) setValues(vs []any) {
	if len(vs) == 0 {
		t.unset()
		return
	}
	t.set(vs)
}

// matches returns the indexes of the values the filter selects, or of all
// values when there is no filter.
func (t *target) matches(vs []any) []int {
	var idx []int
	for i, v := range vs {
		if t.filter == nil || match(t.attr, t.filter, v) {
			idx = append(idx, i)
		}
	}
	return idx
}

func (t *target) noTarget() *scimerr.Error {
	return scimerr.NoTarget(fmt.Sprintf("%s matches no value", t.text))
}

func (t *target) remove() *scimerr.Error {
	a := t.attr
	switch {
	case t.sub == nil && t.filter == nil:
		if a.Required {
			return scimerr.Mutability(fmt.Sprintf("%s is required and cannot be removed", a.Name))
		}
		t.unset()
	case !a.MultiValued: // name.givenName
		if t.sub.Required {
			return scimerr.Mutability(fmt.Sprintf("%s is required and cannot be removed", t.text))
		}
		m, _ := t.current().(map[string]any)
		if m == nil {
			return nil
		}
		deleteKey(m, t.sub.Name)
		if len(m) == 0 {
			t.unset()
		}
	default:
		vs := t.values()
		idx := t.matches(vs)
		if len(idx) == 0 {
			if t.filter == nil {
				return nil
			}
			return t.noTarget()
		}
		var keep []any
		for i, v := range vs {
			if !slices.Contains(idx, i) {
				keep = append(keep, v)
				continue
			}
			if t.sub == nil {
				continue
			}
			if m, ok := v.(map[string]any); ok {
				deleteKey(m, t.sub.Name)
				if len(m) > 0 {
					keep = append(keep, m)
				}
			}
		}
		t.setValues(keep)
	}
	return nil
}

// removeValues removes the values equal to those given (Entra's older
// member removal); values not present are not an error.
func (t *target) removeValues(val any) *scimerr.Error {
	given, err := coerce(t.attr, val, t.text)
	if err != nil {
		return err
	}
	rm, _ := given.([]any)
	vs := t.values()
	var keep []any
	for _, v := range vs {
		if !slices.ContainsFunc(rm, func(r any) bool { return same(t.attr, r, v) }) {
			keep = append(keep, v)
		}
	}
	if len(keep) != len(vs) {
		t.setValues(keep)
	}
	return nil
}

func (t *target) replace(val any) *scimerr.Error {
	a := t.attr
	switch {
	case t.sub == nil && t.filter == nil:
		v, err := coerce(a, val, t.text)
		if err != nil {
			return err
		}
		switch {
		case v == nil:
			return t.remove()
		case a.MultiValued:
			vs := dedupe(a, v.([]any))
			t.setValues(vs)
			fixPrimary(vs, len(vs)-1)
		case a.Type == schema.TypeComplex:
			t.merge(v.(map[string]any))
		default:
			t.set(v)
		}
		return nil
	case !a.MultiValued:
		return t.setSub(val)
	}
	vs := t.values()
	idx := t.matches(vs)
	if len(idx) == 0 {
		if t.filter == nil {
			return scimerr.NoTarget(fmt.Sprintf("%s has no values to replace %s in", a.Name, t.sub.Name))
		}
		return t.noTarget()
	}
	if t.sub == nil {
		v, err := coerceOne(a, val, t.text)
		if err != nil {
			return err
		}
		if v == nil {
			return t.remove()
		}
		for _, i := range idx {
			vs[i] = clone(v)
		}
	} else {
		v, err := coerce(t.sub, val, t.text)
		if err != nil {
			return err
		}
		if v == nil {
			return t.remove()
		}
		for _, i := range idx {
			if m, ok := vs[i].(map[string]any); ok {
				setKey(m, t.sub.Name, clone(v))
			}
		}
	}
	t.setValues(vs)
	fixPrimary(vs, idx[len(idx)-1])
	return nil
}

func (t *target) add(val any) *scimerr.Error {
	a := t.attr
	switch {
	case t.sub == nil && t.filter == nil:
		v, err := coerce(a, val, t.text)
		if err != nil || v == nil {
			return err
		}
		switch {
		case a.MultiValued:
			vs := t.values()
			last := -1
			for _, n := range v.([]any) {
				if i := slices.IndexFunc(vs, func(old any) bool { return same(a, n, old) }); i >= 0 {
					continue
				}
				vs = append(vs, n)
				last = len(vs) - 1
			}
			t.setValues(vs)
			fixPrimary(vs, last)
		case a.Type == schema.TypeComplex:
			t.merge(v.(map[string]any))
		default:
			t.set(v)
		}
		return nil
	case !a.MultiValued:
		return t.setSub(val)
	}
	vs := t.values()
	idx := t.matches(vs)
	var n map[string]any
	if t.sub == nil {
		v, err := coerceOne(a, val, t.text)
		if err != nil || v == nil {
			return err
		}
		if n, _ = v.(map[string]any); n == nil {
			return scimerr.InvalidValue(fmt.Sprintf("%s needs an object as its value", t.text))
		}
		for _, i := range idx {
			if m, ok := vs[i].(map[string]any); ok {
				for k, sv := range n {
					setKey(m, k, clone(sv))
				}
			}
		}
	} else {
		v, err := coerce(t.sub, val, t.text)
		if err != nil || v == nil {
			return err
		}
		n = map[string]any{t.sub.Name: v}
		for _, i := range idx {
			if m, ok := vs[i].(map[string]any); ok {
				setKey(m, t.sub.Name, clone(v))
			}
		}
	}
	if len(idx) > 0 {
		t.setValues(vs)
		fixPrimary(vs, idx[len(idx)-1])
		return nil
	}
	if t.filter == nil {
		return scimerr.NoTarget(fmt.Sprintf("%s has no values to set %s in", a.Name, t.sub.Name))
	}
	// Nothing matched: add a value that the filter would select.
	fields, ok := eqFields(a, t.filter)
	if !ok {
		return t.noTarget()
	}
	for k, v := range n {
		fields[k] = v
	}
	vs = append(vs, fields)
	t.setValues(vs)
	fixPrimary(vs, len(vs)-1)
	return nil
}

// setSub sets the sub-attribute of a single-valued complex attribute.
func (t *target) setSub(val any) *scimerr.Error {
	v, err := coerce(t.sub, val, t.text)
	if err != nil {
		return err
	}
	if v == nil {
		return t.remove()
	}
	t.merge(map[string]any{t.sub.Name: v})
	return nil
}

// merge sets the sub-attributes in n on the complex attribute, creating it
// when unassigned.
func (t *target) merge(n map[string]any) {
	m, _ := t.current().(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	changed := false
	for k, v := range n {
		_, old, _ := lookupKey(m, k)
		changed = changed || !reflect.DeepEqual(old, v)
		setKey(m, k, v)
	}
	if changed {
		// Read-only sub-attributes such as manager.displayName are
		// derived from the others; the server fills them in again.
		for _, s := range t.attr.SubAttributes {
			if s.Mutability == schema.ReadOnly {
				deleteKey(m, s.Name)
			}
		}
	}
	if len(m) > 0 {
		t.set(m)
	}
}

// eqFields returns the sub-attribute values a filter made only of eq
// comparisons joined by and requires, keyed by their schema names.
func eqFields(a *schema.Attribute, e filter.Expr) (map[string]any, bool) {
	out := map[string]any{}
	var walk func(filter.Expr) bool
	walk = func(e filter.Expr) bool {
		switch e := e.(type) {
		case *filter.And:
			return walk(e.Left) && walk(e.Right)
		case *filter.Compare:
			sub, ok := a.Sub(e.Attr.Name)
			if !ok || e.Op != filter.Eq || e.Value.Kind == filter.KindNull || sub.Mutability == schema.ReadOnly {
				return false
			}
			v := e.Value.Any()
			if n, isNum := v.(json.Number); isNum {
				f, err := n.Float64()
				if err != nil {
					return false
				}
				v = f
			}
			if _, err := coerce(sub, v, sub.Name); err != nil {
				return false
			}
			out[sub.Name] = v
			return true
		}
		return false
	}
	return out, walk(e)
}

// fixPrimary makes the value at keep the only primary one when it is
// primary (RFC 7643 §2.4).
func fixPrimary(vs []any, keep int) {
	if keep < 0 || keep >= len(vs) {
		return
	}
	m, ok := vs[keep].(map[string]any)
	if !ok || m["primary"] != true {
		return
	}
	for i, v := range vs {
		if o, ok := v.(map[string]any); ok && i != keep && o["primary"] == true {
			o["primary"] = false
		}
	}
}

// dedupe drops values that repeat an earlier one.
func dedupe(a *schema.Attribute, vs []any) []any {
	var out []any
	for _, v := range vs {
		if !slices.ContainsFunc(out, func(o any) bool { return same(a, v, o) }) {
			out = append(out, v)
		}
	}
	return out
}

// same reports whether the new value n is already present as old: every
// sub-attribute n states equals old's, or, when a's "value" sub-attribute
// is immutable and so identifies the value, their "value"s are equal.
func same(a *schema.Attribute, n, old any) bool {
	nm, ok1 := n.(map[string]any)
	om, ok2 := old.(map[string]any)
	if !ok1 || !ok2 {
		return equalValue(a, n, old)
	}
	if id, ok := a.Sub("value"); ok && id.Mutability == schema.Immutable {
		_, nv, ok1 := lookupKey(nm, id.Name)
		_, ov, ok2 := lookupKey(om, id.Name)
		if ok1 && ok2 {
			return equalValue(id, nv, ov)
		}
	}
	if len(nm) == 0 {
		return len(om) == 0
	}
	for k, nv := range nm {
		_, ov, ok := lookupKey(om, k)
		if !ok {
			return false
		}
		sub, found := a.Sub(k)
		if !found {
			if !reflect.DeepEqual(nv, ov) {
				return false
			}
			continue
		}
		if !equalValue(sub, nv, ov) {
			return false
		}
	}
	return true
}

// equalValue compares two simple values, strings case-insensitively
// unless a is caseExact.
func equalValue(a *schema.Attribute, x, y any) bool {
	xs, ok1 := x.(string)
	ys, ok2 := y.(string)
	if ok1 && ok2 && !a.CaseExact {
		return strings.EqualFold(xs, ys)
	}
	return reflect.DeepEqual(x, y)
}

// tidyExtensions removes empty extensions and keeps "schemas" in step
// with the extensions present.
func (p *patcher) tidyExtensions() {
	for _, e := range p.rt.Extensions {
		k, v, ok := lookupKey(p.doc, e.Schema)
		present := false
		if ok {
			if m, isMap := v.(map[string]any); isMap && len(m) > 0 {
				present = true
			} else {
				delete(p.doc, k)
			}
		}
		schemas, ok := p.doc["schemas"].([]any)
		if !ok {
			continue
		}
		i := slices.IndexFunc(schemas, func(s any) bool {
			str, _ := s.(string)
			return strings.EqualFold(str, e.Schema)
		})
		switch {
		case present && i < 0:
			p.doc["schemas"] = append(slices.Clone(schemas), e.Schema)
		case !present && i >= 0:
			p.doc["schemas"] = slices.Delete(slices.Clone(schemas), i, i+1)
		}
	}
}

// lookupKey finds the key of m equal to name ignoring case, preferring an
// exact match.
func lookupKey(m map[string]any, name string) (string, any, bool) {
	if v, ok := m[name]; ok {
		return name, v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v, true
		}
	}
	return "", nil, false
}

// setKey sets m[name], dropping any key that differs from name only in
// case.
func setKey(m map[string]any, name string, v any) {
	deleteKey(m, name)
	m[name] = v
}

func deleteKey(m map[string]any, name string) {
	for k := range m {
		if strings.EqualFold(k, name) {
			delete(m, k)
		}
	}
}

func clone(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return cloneMap(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = clone(e)
		}
		return out
	}
	return v
}

func cloneMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = clone(v)
	}
	return out
}
