package api

import (
	"fmt"
	"html/template"
	"strings"
)

// chartSeries is one coloured series of a chart.
type chartSeries struct {
	Name   string
	Color  string
	Values []float64
}

// barChart draws stacked bars per label as an inline SVG, so the dashboard needs no
// JavaScript. It scales to its container through its viewBox.
func barChart(title string, labels []string, series []chartSeries, format func(float64) string) template.HTML {
	const w, h, left, bottom, top = 640.0, 200.0, 56.0, 22.0, 10.0
	n := len(labels)
	var peak float64
	for i := range n {
		var sum float64
		for _, s := range series {
			if i < len(s.Values) && s.Values[i] > 0 {
				sum += s.Values[i]
			}
		}
		peak = max(peak, sum)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<title>%s</title>`, template.HTMLEscapeString(title))
	plotH := h - bottom - top
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#c5cbd3"/>`, left, h-bottom, w, h-bottom)
	if peak > 0 {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#6b7280">%s</text>`,
			left-4, top+8, template.HTMLEscapeString(format(peak)))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="11" text-anchor="end" fill="#6b7280">0</text>`, left-4, h-bottom)
	if n > 0 {
		slot := (w - left) / float64(n)
		bw := max(1, slot*0.7)
		for i := range n {
			x := left + float64(i)*slot + (slot-bw)/2
			y := h - bottom
			for _, s := range series {
				if i >= len(s.Values) || s.Values[i] <= 0 || peak == 0 {
					continue
				}
				bh := s.Values[i] / peak * plotH
				y -= bh
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
					x, y, bw, bh, s.Color, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(s.Name),
					template.HTMLEscapeString(format(s.Values[i])))
			}
		}
		ticks := []struct {
			i      int
			x      float64
			anchor string
		}{{0, left, "start"}, {n / 2, left + (float64(n/2)+0.5)*slot, "middle"}, {n - 1, w, "end"}}
		for k, tk := range ticks {
			if n < 3 && k > 0 && tk.i == ticks[k-1].i {
				continue
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="11" text-anchor="%s" fill="#6b7280">%s</text>`,
				tk.x, h-6, tk.anchor, template.HTMLEscapeString(labels[tk.i]))
		}
	}
	b.WriteString(`</svg>`)
	if len(series) > 1 {
		b.WriteString(`<p class="legend">`)
		for _, s := range series {
			fmt.Fprintf(&b, `<span><svg width="10" height="10" aria-hidden="true"><rect width="10" height="10" fill="%s"/></svg>%s</span> `,
				s.Color, template.HTMLEscapeString(s.Name))
		}
		b.WriteString(`</p>`)
	}
	return template.HTML(b.String())
}
