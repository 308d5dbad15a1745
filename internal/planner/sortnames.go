package planner

import (
	"encoding/binary"
	"slices"
	"strings"
)

// The node views in name order, as every pass needs them: at 65,000 nodes a comparison sort of the
// names was a tenth of a pass.

// nameRecord is a view and the 8 bytes of its name that follow the prefix every name shares ("node-",
// "ip-10-"), big-endian, padded with zeros.
type nameRecord struct {
	prefix uint64
	v      *nodeView
}

// sortByName returns the views, then the more views, in the byte order of their names
// (strings.Compare's). names holds the names of views side by side, in their order (newWorld copies
// them there, so that the sort reads them from one place rather than from every node object); the
// names of more are read from them.
//
// It sorts on the 8 bytes after the shared prefix as numbers, with a radix sort, and compares names
// only where those bytes are equal. Names that differ there are in the numbers' order: a name that
// ends first is padded with zeros and sorts first, as it does by name.
func sortByName(views []nodeView, names string, more []*nodeView) []*nodeView {
	// each calls f with every view and its name.
	each := func(f func(v *nodeView, name string)) {
		start := 0
		for i := range views {
			end := start + len(views[i].name)
			f(&views[i], names[start:end])
			start = end
		}
		for _, v := range more {
			f(v, v.name)
		}
	}
	common, first := "", true
	each(func(_ *nodeView, name string) {
		if first {
			common, first = name, false
			return
		}
		n := 0
		for n < len(common) && n < len(name) && common[n] == name[n] {
			n++
		}
		common = common[:n]
	})
	records := make([]nameRecord, 0, len(views)+len(more))
	each(func(v *nodeView, name string) {
		var b [8]byte
		copy(b[:], name[len(common):])
		records = append(records, nameRecord{prefix: binary.BigEndian.Uint64(b[:]), v: v})
	})
	radixSort(records)
	for start := 0; start < len(records); {
		end := start + 1
		for end < len(records) && records[end].prefix == records[start].prefix {
			end++
		}
		if end-start > 1 {
			slices.SortFunc(records[start:end], func(a, b nameRecord) int { return strings.Compare(a.v.name, b.v.name) })
		}
		start = end
	}
	out := make([]*nodeView, len(records))
	for i, r := range records {
		out[i] = r.v
	}
	return out
}

// radixSort sorts the records by prefix, a byte at a time from the last (a stable counting sort per
// byte), skipping the bytes every record has the same.
func radixSort(records []nameRecord) {
	if len(records) < 2 {
		return
	}
	src, dst := records, make([]nameRecord, len(records))
	for shift := 0; shift < 64; shift += 8 {
		var offsets [256]int
		for _, r := range src {
			offsets[byte(r.prefix>>shift)]++
		}
		if offsets[byte(src[0].prefix>>shift)] == len(src) {
			continue
		}
		next := 0
		for d, n := range offsets {
			offsets[d] = next
			next += n
		}
		for _, r := range src {
			d := byte(r.prefix >> shift)
			dst[offsets[d]] = r
			offsets[d]++
		}
		src, dst = dst, src
	}
	copy(records, src)
}
