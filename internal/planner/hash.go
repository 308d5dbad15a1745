package planner

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// TemplateHash names a template revision: FNV-32a over the template's JSON (map keys sorted, so
// deterministic), with the collision count mixed in when set, encoded in the same safe alphabet as
// upstream's controller-revision-hash values.
func TemplateHash(template *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	raw, err := json.Marshal(template)
	if err != nil {
		// A PodTemplateSpec always marshals; keep the function total anyway.
		raw = []byte(template.String())
	}
	_, _ = h.Write(raw)
	if collisionCount != nil {
		buf := make([]byte, 8)
		binary.LittleEndian.PutUint32(buf, uint32(*collisionCount))
		_, _ = h.Write(buf)
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}
