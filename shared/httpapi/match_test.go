package httpapi

import (
	"reflect"
	"testing"
)

func TestMatch(t *testing.T) {
	routes := []string{
		"GET /connection-types", "GET /connections", "POST /connections", "GET /connections/{id}",
		"GET /connections/{id}/audit", "PUT /connections/{id}/owners", "GET /static/{proxy+}",
	}
	tests := []struct {
		method, path string
		key          string
		params       map[string]string
	}{
		{"GET", "/connections", "GET /connections", map[string]string{}},
		{"GET", "/connections/", "GET /connections", map[string]string{}},
		{"POST", "/connections", "POST /connections", map[string]string{}},
		{"GET", "/connections/01ABC", "GET /connections/{id}", map[string]string{"id": "01ABC"}},
		{"GET", "/connections/a%20b/audit", "GET /connections/{id}/audit", map[string]string{"id": "a b"}},
		{"GET", "/static/css/app.css", "GET /static/{proxy+}", map[string]string{"proxy": "css/app.css"}},
		{"DELETE", "/connections/x", "", nil},
		{"GET", "/connections/x/y", "", nil},
		{"GET", "/", "", nil},
	}
	for _, tt := range tests {
		key, params, ok := Match(routes, tt.method, tt.path)
		if tt.key == "" {
			if ok {
				t.Errorf("%s %s matched %s", tt.method, tt.path, key)
			}
			continue
		}
		if !ok || key != tt.key || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("%s %s = %q %v %v; want %q %v", tt.method, tt.path, key, params, ok, tt.key, tt.params)
		}
	}
}
