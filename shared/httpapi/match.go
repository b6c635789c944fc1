package httpapi

import (
	"net/url"
	"strings"
)

// Match finds the route key among routes ("GET /connections/{id}") that a
// request for method and path selects, with its path parameters decoded, as
// API Gateway does: literal segments match exactly and win over parameters,
// {name} matches one segment, {name+} the rest of the path.
func Match(routes []string, method, path string) (key string, params map[string]string, ok bool) {
	segs := split(path)
	best := -1
	for _, r := range routes {
		m, p, found := strings.Cut(r, " ")
		if !found || (m != method && m != "ANY") {
			continue
		}
		if ps, score, hit := matchPath(split(p), segs); hit && score > best {
			key, params, best = r, ps, score
		}
	}
	return key, params, best >= 0
}

func split(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// matchPath scores a match by its literal segments, so /connections/types
// would win over /connections/{id}.
func matchPath(pattern, segs []string) (map[string]string, int, bool) {
	params := map[string]string{}
	score := 0
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}") {
			if i >= len(segs) {
				return nil, 0, false
			}
			rest, err := url.PathUnescape(strings.Join(segs[i:], "/"))
			if err != nil {
				return nil, 0, false
			}
			params[p[1:len(p)-2]] = rest
			return params, score, true
		}
		if i >= len(segs) {
			return nil, 0, false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			v, err := url.PathUnescape(segs[i])
			if err != nil || v == "" {
				return nil, 0, false
			}
			params[p[1:len(p)-1]] = v
			continue
		}
		if p != segs[i] {
			return nil, 0, false
		}
		score++
	}
	if len(pattern) != len(segs) {
		return nil, 0, false
	}
	return params, score, true
}
