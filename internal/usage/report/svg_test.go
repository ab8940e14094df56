package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hexprox/hexprox/internal/humanize"
	"github.com/hexprox/hexprox/internal/usage"
)

// chart is what a reader sees in an SVG that WriteSVG drew, read back
// with encoding/xml.
type chart struct {
	title, subtitle string
	series          []chartSeries
	ticks           []tick
	legend          []legendEntry
	axes            bool
}

type chartSeries struct {
	org, fill string
	bars      []bar
}

type bar struct{ y, height float64 }

type tick struct {
	value int64
	y     float64
}

type legendEntry struct{ fill, text string }

func parseChart(t *testing.T, b []byte) chart {
	t.Helper()
	var c chart
	dec := xml.NewDecoder(bytes.NewReader(b))
	var group string          // class of the <g> we are in
	var text *strings.Builder // a <text> being read
	var textClass string      // its class
	var textY float64         // its y
	var pendingFill string    // a legend swatch waiting for its text
	var textTitle int         // <title> nesting inside a <text>
	num := func(s string) float64 { f, _ := strconv.ParseFloat(s, 64); return f }
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the SVG does not parse: %v\n%s", err, b)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := func(n string) string {
				for _, a := range el.Attr {
					if a.Name.Local == n {
						return a.Value
					}
				}
				return ""
			}
			switch el.Name.Local {
			case "g":
				group = attr("class")
				switch group {
				case "series":
					c.series = append(c.series, chartSeries{org: attr("data-org"), fill: attr("fill")})
				case "axes":
					c.axes = true
				}
			case "rect":
				switch group {
				case "series":
					s := &c.series[len(c.series)-1]
					s.bars = append(s.bars, bar{num(attr("y")), num(attr("height"))})
				case "legend":
					pendingFill = attr("fill")
				}
			case "text":
				text, textClass, textY = &strings.Builder{}, attr("class"), num(attr("y"))
			case "title":
				if text != nil {
					textTitle++
				}
			}
		case xml.CharData:
			if text != nil && textTitle == 0 {
				text.Write(el)
			}
		case xml.EndElement:
			switch el.Name.Local {
			case "g":
				group = ""
			case "title":
				if text != nil {
					textTitle--
				}
			case "text":
				s := text.String()
				switch {
				case textClass == "title":
					c.title = s
				case textClass == "subtitle":
					c.subtitle = s
				case group == "yticks":
					v, err := strconv.ParseInt(strings.ReplaceAll(s, ",", ""), 10, 64)
					if err != nil {
						t.Fatalf("y tick %q is not a number", s)
					}
					c.ticks = append(c.ticks, tick{v, textY - 4}) // labels sit 4 below their line
				case group == "legend":
					c.legend = append(c.legend, legendEntry{pendingFill, s})
				}
				text = nil
			}
		}
	}
	return c
}

func svgOf(t *testing.T, src usage.Source, args ...string) chart {
	t.Helper()
	file := filepath.Join(t.TempDir(), "usage.svg")
	runOut(t, src, append(args, "--svg", file)...)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return parseChart(t, b)
}

// valueAt reads the y axis like a person: the value at height y, from the
// ticks' labels and positions.
func (c chart) valueAt(y float64) float64 {
	a, b := c.ticks[0], c.ticks[len(c.ticks)-1]
	return float64(a.value) + (y-a.y)*float64(b.value-a.value)/(b.y-a.y)
}

func TestSVGHasOneSeriesPerOrg(t *testing.T) {
	c := svgOf(t, fixture(t))
	want := []string{"Acme & Sons <Water>", "Bravo Roads", "credential URL deadbeef"} // largest first
	if len(c.series) != len(want) {
		t.Fatalf("series %+v, want %v", c.series, want)
	}
	for i, o := range want {
		if c.series[i].org != o || len(c.series[i].bars) != 1 {
			t.Errorf("series %d: %q with %d bars, want %q with 1", i, c.series[i].org, len(c.series[i].bars), o)
		}
	}
	if !c.axes || len(c.legend) != 3 || c.legend[0].text != "Acme & Sons <Water> (162)" {
		t.Errorf("axes %v, legend %+v", c.axes, c.legend)
	}
	// Each bar reads on the y axis as its day's requests.
	for i, n := range []float64{162, 38, 7} {
		b := c.series[i].bars[0]
		if top, bottom := c.valueAt(b.y), c.valueAt(b.y+b.height); math.Abs(top-n) > 0.5 || math.Abs(bottom) > 0.5 {
			t.Errorf("%s's bar reads %.1f to %.1f on the axis, want 0 to %v", c.series[i].org, bottom, top, n)
		}
	}
}

func TestSVGTitleStatesThePeriod(t *testing.T) {
	src := fixture(t)
	c := svgOf(t, src, "--from", "2026-03-01", "--to", "2026-03-14")
	if c.title != "Requests per day by organisation, 2026-03-01 to 2026-03-14 (UTC)" {
		t.Errorf("title %q", c.title)
	}
	if c.subtitle != "207 requests from 3 organisations" {
		t.Errorf("subtitle %q", c.subtitle)
	}
	c = svgOf(t, src, "--from", "2026-02-20", "--to", "2026-03-12", "--org", "bravo roads")
	if c.title != "Requests per day, Bravo Roads, 2026-02-20 to 2026-03-12 (UTC)" || c.subtitle != "1,000 requests" {
		t.Errorf("one organisation's title %q, subtitle %q", c.title, c.subtitle)
	}
	if len(c.series) != 1 || c.series[0].org != "Bravo Roads" {
		t.Errorf("one organisation's series %+v", c.series)
	}
}

// orgs writes n organisations with 10, 20, ... requests on one day.
func orgs(t *testing.T, n int) *usage.MemorySink {
	t.Helper()
	s := &usage.MemorySink{}
	var rows []usage.Row
	for i := range n {
		rows = append(rows, usage.Row{Hour: at(3, 10), Instance: "a",
			SubjectID: usage.SubjectID{Org: fmt.Sprintf("Org %02d", i+1), Key: "k"},
			Counts:    usage.Counts{usage.TilesRedirected: int64(10 * (i + 1))}})
	}
	if err := s.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSVGSeriesHaveDistinctColours(t *testing.T) {
	for _, n := range []int{3, 10, 11, 15, 40} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			c := svgOf(t, orgs(t, n))
			fills := map[string]string{}
			for i, s := range c.series {
				if s.fill == "" {
					t.Errorf("series %q has no fill", s.org)
				}
				if other, dup := fills[s.fill]; dup {
					t.Errorf("%q and %q are both %s", other, s.org, s.fill)
				}
				fills[s.fill] = s.org
				if i >= len(c.legend) || c.legend[i].fill != s.fill || !strings.HasPrefix(c.legend[i].text, s.org+" (") {
					t.Errorf("series %d %q %s has legend %+v", i, s.org, s.fill, c.legend)
				}
			}
			if n <= 10 {
				if len(c.series) != n || c.series[0].org != fmt.Sprintf("Org %02d", n) {
					t.Errorf("%d organisations drawn as %d series, the first %q", n, len(c.series), c.series[0].org)
				}
				return
			}
			// The 9 largest by name, the rest as others, which sums them.
			if len(c.series) != 10 {
				t.Fatalf("%d organisations drawn as %d series", n, len(c.series))
			}
			for i := range 9 {
				if want := fmt.Sprintf("Org %02d", n-i); c.series[i].org != want {
					t.Errorf("series %d is %q, want %q", i, c.series[i].org, want)
				}
			}
			others := c.series[9]
			var sum int64
			for i := 1; i <= n-9; i++ {
				sum += int64(10 * i)
			}
			if want := fmt.Sprintf("others, %d organisations", n-9); others.org != want {
				t.Errorf("last series %q, want %q", others.org, want)
			}
			if want := fmt.Sprintf("others, %d organisations (%s)", n-9, humanize.Thousands(sum)); c.legend[9].text != want {
				t.Errorf("others' legend %q, want %q", c.legend[9].text, want)
			}
			if b := others.bars[0]; math.Abs(c.valueAt(b.y)-c.valueAt(b.y+b.height)-float64(sum)) > float64(c.ticks[len(c.ticks)-1].value)/600 {
				t.Errorf("others' bar is %.1f tall on the axis, want %d", c.valueAt(b.y)-c.valueAt(b.y+b.height), sum)
			}
			if !strings.Contains(c.subtitle, fmt.Sprintf("the %d smallest drawn together as others", n-9)) {
				t.Errorf("subtitle %q does not say what others are", c.subtitle)
			}
		})
	}
}

func TestSVGTicksAreRound(t *testing.T) {
	for _, peak := range []int64{0, 1, 3, 7, 10, 11, 162, 599, 1000, 2501, 123_457, 9_999_999} {
		t.Run(strconv.FormatInt(peak, 10), func(t *testing.T) {
			s := &usage.MemorySink{}
			s.Write(context.Background(), []usage.Row{
				{Hour: at(2, 0), Instance: "a", SubjectID: bravo, Counts: usage.Counts{usage.TilesRedirected: peak}},
				{Hour: at(3, 0), Instance: "a", SubjectID: bravo, Counts: usage.Counts{usage.TilesRedirected: peak / 3}},
			})
			c := svgOf(t, s, "--from", "2026-03-01", "--to", "2026-03-05")
			if len(c.ticks) < 2 || len(c.ticks) > 6 {
				t.Fatalf("%d ticks: %+v", len(c.ticks), c.ticks)
			}
			step := c.ticks[1].value - c.ticks[0].value
			if c.ticks[0].value != 0 || !round(step) {
				t.Fatalf("ticks %+v: not 0 and a round step", c.ticks)
			}
			dy := c.ticks[1].y - c.ticks[0].y
			for i, tk := range c.ticks {
				if tk.value != int64(i)*step || math.Abs(tk.y-c.ticks[0].y-float64(i)*dy) > 0.15 {
					t.Errorf("tick %d is %d at y %.1f: not evenly spaced by %d", i, tk.value, tk.y, step)
				}
			}
			last := c.ticks[len(c.ticks)-1].value
			if last < peak || last-step >= max(peak, 1) {
				t.Errorf("axis ends at %d for a busiest day of %d (step %d)", last, peak, step)
			}
			if peak > 0 {
				b := c.series[0].bars[0]
				if got := c.valueAt(b.y); math.Abs(got-float64(peak)) > float64(last)/600 {
					t.Errorf("the busiest day reads %.1f on the axis, want %d", got, peak)
				}
			}
		})
	}
}

// round is 1, 2, 2.5 or 5 × 10^n, and whole.
func round(step int64) bool {
	if step <= 0 {
		return false
	}
	for step%10 == 0 && step >= 100 {
		step /= 10
	}
	switch step {
	case 1, 2, 5, 10, 20, 25, 50:
		return true
	}
	return false
}
