package planner

import (
	"encoding/binary"
	"slices"
	"strings"
)

// The node views in name order, as every pass needs them: at 65,000 nodes a comparison sort of the
// names was a tenth of a pass.

// viewKey is a node view with its name, for the sort by name.
type viewKey struct {
	name string
	v    *nodeView
}

// nameRecord is a view's place in the keys and the 8 bytes of its name that follow the prefix every
// name shares ("node-", "ip-10-"), big-endian, padded with zeros.
type nameRecord struct {
	prefix uint64
	i      int
}

// sortByName returns the views in the byte order of their names (strings.Compare's). It sorts on
// the 8 bytes after the shared prefix as numbers, with a radix sort, and orders by name only names
// equal in those bytes. Names that differ there are in the numbers' order: a name that ends first is
// padded with zeros and sorts first, as it does by name.
func sortByName(keys []viewKey) []*nodeView {
	out := make([]*nodeView, len(keys))
	if len(keys) < 2 {
		for i, k := range keys {
			out[i] = k.v
		}
		return out
	}
	common := keys[0].name
	for _, k := range keys[1:] {
		n := 0
		for n < len(common) && n < len(k.name) && common[n] == k.name[n] {
			n++
		}
		common = common[:n]
	}
	records := make([]nameRecord, len(keys))
	for i, k := range keys {
		var b [8]byte
		copy(b[:], k.name[len(common):])
		records[i] = nameRecord{prefix: binary.BigEndian.Uint64(b[:]), i: i}
	}
	radixSort(records)
	for start := 0; start < len(records); {
		end := start + 1
		for end < len(records) && records[end].prefix == records[start].prefix {
			end++
		}
		if end-start > 1 {
			slices.SortFunc(records[start:end], func(a, b nameRecord) int { return strings.Compare(keys[a.i].name, keys[b.i].name) })
		}
		start = end
	}
	for j, r := range records {
		out[j] = keys[r.i].v
	}
	return out
}

// radixSort sorts the records by prefix, a byte at a time from the last (a stable counting sort per
// byte), skipping the bytes every record has the same.
func radixSort(records []nameRecord) {
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
