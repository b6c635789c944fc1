package resolver_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/connmgr/connmgr/shared/apperr"
	"github.com/connmgr/connmgr/shared/connection"
	"github.com/connmgr/connmgr/shared/identity"
	"github.com/connmgr/connmgr/shared/oauth"
	"github.com/connmgr/connmgr/shared/resolver"
	"github.com/connmgr/connmgr/shared/secret"
)

// setAttr writes one attribute of a connection item directly in the table,
// as someone with write access to DynamoDB but not to KMS could.
func (f *fixture) setAttr(t *testing.T, id, name string, v types.AttributeValue) {
	t.Helper()
	_, err := f.env.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(f.env.Stack.TableName),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "T#t1#C#" + id}, "sk": &types.AttributeValueMemberS{Value: "CONN"},
		},
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": name},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": v},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }

// TestSecretsOpenOnlyForTheirDestinations tampers with what names a
// secret's hosts directly in the table: the secret then never decrypts,
// whatever the API would have allowed.
func TestSecretsOpenOnlyForTheirDestinations(t *testing.T) {
	tests := []struct {
		name string
		attr string
		v    types.AttributeValue
		ok   bool
	}{
		{"untouched", "name", s("renamed"), true},
		{"same origin, other path", "settings", s(`{"baseUrl":"https://api.example.com/v2","testPath":"/other"}`), true},
		{"explicit default port", "settings", s(`{"baseUrl":"https://API.example.com:443/v1"}`), true},
		{"other host", "settings", s(`{"baseUrl":"https://evil.example.net/v1"}`), false},
		{"other port", "settings", s(`{"baseUrl":"https://api.example.com:8443/v1"}`), false},
		{"other scheme", "settings", s(`{"baseUrl":"http://api.example.com/v1"}`), false},
		{"not a URL", "settings", s(`{"baseUrl":"api.example.com"}`), false},
		{"token endpoint added", "tokenEndpoint", s("https://idp.example.net:443"), false},
		{"type changed", "type", s("sharepoint-online"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.create(t, connection.Connection{ID: "c1", Type: "http-basic", Settings: map[string]any{"baseUrl": "https://api.example.com/v1"}},
				map[string]string{"username": "svc", "password": "pw-CANARY"})
			f.setAttr(t, "c1", tt.attr, tt.v)
			cred, err := f.res.Resolve(context.Background(), f.input("c1"))
			if tt.ok {
				if err != nil || cred.Password() != "pw-CANARY" {
					t.Fatalf("resolve: %v", err)
				}
				return
			}
			if fl := failure(t, err); fl.Code != resolver.CodeSecretUnreadable {
				t.Fatalf("want secret_unreadable, got %+v", fl)
			}
		})
	}
}

// TestRefreshNeverFollowsANewTokenEndpoint: when the tenant's registration
// names another token endpoint, the stored refresh token is not sent
// there: the connection needs a new authorization (expired,
// token_endpoint_changed), and the new endpoint gets no call.
func TestRefreshNeverFollowsANewTokenEndpoint(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.authorized(t, "c1")
	rec, _ := f.stored(t, "c1")
	if rec.Conn.TokenEndpoint == "" {
		t.Fatal("the authorization did not record its token endpoint")
	}
	other := newFixture(t) // another provider, on another port
	admin := identity.Caller{Tenant: "t1", User: "root", TenantAdmin: true}
	reg := oauth.NewRegistry(f.env.Store, f.env.Sealer, oauth.RegistryOptions{Now: f.env.Clock.Now, AllowLoopbackHTTP: true})
	cur, err := reg.Get(ctx, admin, "oauth2-generic")
	if err != nil {
		t.Fatal(err)
	}
	in := oauth.ClientInput{ClientID: f.idp.ClientID(), AuthorizeURL: f.idp.AuthorizeURL(), TokenURL: other.idp.TokenURL(), Scopes: cur.Scopes}
	if _, err := reg.Put(ctx, admin, "oauth2-generic", in, cur.Version); apperr.As(err).Code != "credentials_required" || !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("moving the token endpoint without the client secret: %v", err)
	}
	in.ClientSecret = secret.New(f.idp.ClientSecret())
	if _, err := reg.Put(ctx, admin, "oauth2-generic", in, cur.Version); err != nil {
		t.Fatalf("moving the token endpoint with the client secret: %v", err)
	}
	f.env.Clock.Advance(2 * time.Hour)
	_, err = f.res.Resolve(ctx, f.input("c1"))
	if fl := failure(t, err); !fl.AuthFailure || fl.ProviderCode != oauth.CodeTokenEndpointChanged {
		t.Fatalf("want an authentication failure token_endpoint_changed, got %+v", fl)
	}
	after, _ := f.stored(t, "c1")
	if after.Conn.Status != connection.StatusExpired || after.Conn.StatusReason != oauth.CodeTokenEndpointChanged {
		t.Errorf("status %s (%s)", after.Conn.Status, after.Conn.StatusReason)
	}
	if n := other.idp.Calls("refresh_token"); n != 0 {
		t.Errorf("the new token endpoint got %d refresh calls", n)
	}
}
