package nft

import "testing"

// benchSizes are the configs of the benchmark table: the shipped default
// (all four interfaces enabled and online), 16 interfaces × 200 rules and
// 60 interfaces × 1000 rules.
var benchSizes = []struct {
	name string
	in   func() *Input
}{
	{"default", func() *Input {
		return shippedInput([5]bool{false, true, true, true, true}, [5]bool{false, true, true, true, true})
	}},
	{"16x200", func() *Input { return manyRulesInput(16, 200) }},
	{"60x1000", func() *Input { return manyRulesInput(60, 1000) }},
}

func BenchmarkRender(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			in := size.in()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Render(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPlanString(b *testing.B) {
	p, err := Render(manyRulesInput(60, 1000))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.String()
	}
}
