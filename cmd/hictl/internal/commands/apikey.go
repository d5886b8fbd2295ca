package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// KeyWarning is printed after every key hictl shows (create, rotate).
const KeyWarning = "⚠ Please store this key securely, it will not be shown again"

// MaxRotateOverlap is the longest overlap RotateApiKey accepts.
const MaxRotateOverlap = 90 * 24 * time.Hour

// apiKeyView is an API key (never its secret) as `--output json` prints it.
type apiKeyView struct {
	ID            string   `json:"id"`
	Name          string   `json:"name"`
	DisplayPrefix string   `json:"display_prefix"`
	UserID        string   `json:"user_id"`
	Permissions   []string `json:"permissions"`
	State         string   `json:"state"`
	CreateTime    string   `json:"create_time,omitempty"`
	ExpireTime    string   `json:"expire_time,omitempty"`
	LastUsedTime  string   `json:"last_used_time,omitempty"`
	RevokeTime    string   `json:"revoke_time,omitempty"`
	RotatedFromID string   `json:"rotated_from_id,omitempty"`
	RotatedToID   string   `json:"rotated_to_id,omitempty"`
}

func newAPIKeyView(k *authv1.ApiKey) apiKeyView {
	perms := k.GetPermissions()
	if perms == nil {
		perms = []string{}
	}
	return apiKeyView{
		ID:            k.GetId(),
		Name:          k.GetName(),
		DisplayPrefix: k.GetDisplayPrefix(),
		UserID:        k.GetUserId(),
		Permissions:   perms,
		State:         keyState(k.GetState()),
		CreateTime:    formatTime(k.GetCreateTime()),
		ExpireTime:    formatTime(k.GetExpireTime()),
		LastUsedTime:  formatTime(k.GetLastUsedTime()),
		RevokeTime:    formatTime(k.GetRevokeTime()),
		RotatedFromID: k.GetRotatedFromId(),
		RotatedToID:   k.GetRotatedToId(),
	}
}

// keyState is "active", "rotated", "expired" or "revoked".
func keyState(s authv1.ApiKeyState) string {
	if s == authv1.ApiKeyState_API_KEY_STATE_UNSPECIFIED {
		return "unknown"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "API_KEY_STATE_"))
}

// newKeyOutput is a key shown once, as JSON.
type newKeyOutput struct {
	// Key is the full secret.
	Key      string      `json:"key"`
	APIKey   apiKeyView  `json:"api_key"`
	Previous *apiKeyView `json:"previous,omitempty"`
}

// printNewKey prints a freshly issued key in the manual's shape (or JSON, or
// only the key with --quiet), always followed by the warning (on stderr when
// standard output is meant for machines).
func printNewKey(w, errw io.Writer, out outputFlag, quiet bool, headline, secret string, k, previous *authv1.ApiKey) error {
	switch {
	case quiet:
		if _, err := fmt.Fprintln(w, secret); err != nil {
			return err
		}
		fmt.Fprintln(errw, KeyWarning)
		return nil
	case out.json():
		o := newKeyOutput{Key: secret, APIKey: newAPIKeyView(k)}
		if previous != nil {
			v := newAPIKeyView(previous)
			o.Previous = &v
		}
		if err := writeJSON(w, o); err != nil {
			return err
		}
		fmt.Fprintln(errw, KeyWarning)
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nKey: %s\nKey ID: %s\nName: %s\nUser ID: %s\nPermissions: %s\nExpires: %s\n",
		headline, secret, k.GetId(), k.GetName(), k.GetUserId(), strings.Join(k.GetPermissions(), ","), orNever(formatTime(k.GetExpireTime())))
	if previous != nil {
		fmt.Fprintf(&b, "Previous key: %s (%s, valid until %s)\n", previous.GetId(), keyState(previous.GetState()), orNever(formatTime(previous.GetExpireTime())))
	}
	b.WriteString(KeyWarning + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func orNever(v string) string {
	if v == "" {
		return "never"
	}
	return v
}

func newAPIKeyCmd(s IO) *cobra.Command {
	var (
		af  authFlags
		out outputFlag
	)
	cmd := newGroupCmd("apikey", "Manage API keys: create, list, rotate, revoke",
		`apikey manages API keys (hsi_<env>_key_...) through the auth service, over gRPC with the
operator certificate. A key's secret is shown once, when it is created or rotated; only a keyed
hash is stored.`)
	af.registerOn(cmd)
	out.register(cmd)
	cmd.AddCommand(
		newAPIKeyCreateCmd(s, &af, &out),
		newAPIKeyListCmd(s, &af, &out),
		newAPIKeyRotateCmd(s, &af, &out),
		newAPIKeyRevokeCmd(s, &af, &out),
	)
	return cmd
}

// parseScopes splits and checks --scopes: permission names like
// "miners:read", each once.
func parseScopes(in []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, raw := range in {
		for _, p := range strings.Split(raw, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			if !validScope(p) {
				return nil, usageError{fmt.Errorf("--scopes: %q is not a permission like miners:read", p)}
			}
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	if len(out) == 0 {
		return nil, usageError{fmt.Errorf("--scopes is required, e.g. --scopes miners:read,miners:write")}
	}
	return out, nil
}

// validScope matches the API's ^[a-z][a-z_-]*:[a-z][a-z_-]*$.
func validScope(p string) bool {
	resource, action, ok := strings.Cut(p, ":")
	word := func(s string) bool {
		if s == "" || s[0] < 'a' || s[0] > 'z' {
			return false
		}
		for i := 1; i < len(s); i++ {
			if c := s[i]; !(c >= 'a' && c <= 'z' || c == '_' || c == '-') {
				return false
			}
		}
		return true
	}
	return ok && word(resource) && word(action)
}

func newAPIKeyCreateCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var (
		userID, name, expiresIn string
		scopes                  []string
		quiet                   bool
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME --scopes PERM[,PERM...]",
		Short: "Create an API key; its secret is printed once",
		Long: `create issues an API key for a user (--user-id; the auth service only omits it for a caller
that is itself a user) with a permission scope that the user must hold. The key is printed once and cannot be shown again.
--expires-in takes days (90d or 90) or a duration of whole days; without it the server's
default of 90 days applies.`,
		Example: `  hictl apikey create --user-id 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f --name billing-export \
      --scopes miners:read,miners:write --expires-in 90d
  key=$(hictl apikey create --user-id ... --name ci --scopes miners:read --quiet)`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkUUID("--user-id", userID, true); err != nil {
				return err
			}
			if strings.TrimSpace(name) == "" {
				return usageError{fmt.Errorf("--name is required")}
			}
			perms, err := parseScopes(scopes)
			if err != nil {
				return err
			}
			var days int32
			if expiresIn != "" {
				if days, err = parseDays(expiresIn); err != nil {
					return usageError{fmt.Errorf("--expires-in: %w", err)}
				}
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.CreateApiKey(ctx, &authv1.CreateApiKeyRequest{
					Name:          name,
					Permissions:   perms,
					ExpiresInDays: days,
					UserId:        userID,
				})
				if err != nil {
					return c.wrap("create API key", err)
				}
				return printNewKey(cmd.OutOrStdout(), cmd.ErrOrStderr(), *out, quiet, "API key created", resp.GetSecret(), resp.GetApiKey(), nil)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&userID, "user-id", "", "owner of the key (the auth service requires it when hictl acts with the operator certificate)")
	f.StringVar(&name, "name", "", "label of the key (required)")
	f.StringSliceVar(&scopes, "scopes", nil, "permissions of the key, comma-separated (required; --permissions is accepted too)")
	f.StringVar(&expiresIn, "expires-in", "", "lifetime in days: 90d, 90 or 2160h (default: the server's, 90 days)")
	f.BoolVarP(&quiet, "quiet", "q", false, "print only the key (the warning goes to standard error)")
	f.SetNormalizeFunc(aliases(map[string]string{"permissions": "scopes"}))
	return cmd
}

func newAPIKeyListCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var (
		userID, pageToken string
		pageSize          int32
		all, inactive     bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (without their secrets)",
		Example: `  hictl apikey list --all
  hictl apikey list --user-id 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f --include-inactive -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkUUID("--user-id", userID, true); err != nil {
				return err
			}
			if err := checkPageSize(pageSize); err != nil {
				return err
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				keys, next, err := collectPages(ctx, pageToken, all, func(ctx context.Context, token string) ([]*authv1.ApiKey, string, error) {
					ctx, cancel := c.callCtx(ctx)
					defer cancel()
					resp, err := c.ListApiKeys(ctx, &authv1.ListApiKeysRequest{
						PageSize:        pageSize,
						PageToken:       token,
						UserId:          userID,
						IncludeInactive: inactive,
					})
					if err != nil {
						return nil, "", c.wrap("list API keys", err)
					}
					return resp.GetApiKeys(), resp.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if out.json() {
					views := make([]apiKeyView, 0, len(keys))
					for _, k := range keys {
						views = append(views, newAPIKeyView(k))
					}
					return writeJSON(w, struct {
						APIKeys       []apiKeyView `json:"api_keys"`
						NextPageToken string       `json:"next_page_token,omitempty"`
					}{views, next})
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tUSER\tSTATE\tSCOPES\tEXPIRES\tLAST USED")
				for _, k := range keys {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetId(), k.GetName(), orDash(k.GetDisplayPrefix()),
						orDash(k.GetUserId()), keyState(k.GetState()), strings.Join(k.GetPermissions(), ","),
						orNever(formatTime(k.GetExpireTime())), orDash(formatTime(k.GetLastUsedTime())))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				morePages(cmd.ErrOrStderr(), next)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&userID, "user-id", "", "only keys of this user")
	f.BoolVar(&inactive, "include-inactive", false, "include revoked and expired keys")
	f.Int32Var(&pageSize, "page-size", 0, "keys per page (0: the server's default of 50; at most 1000)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token (printed after a partial list)")
	f.BoolVar(&all, "all", false, "follow page tokens and list every key")
	return cmd
}

func newAPIKeyRotateCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var (
		overlap string
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "rotate KEY_ID",
		Short: "Replace a key; the old one stays valid for the overlap (default 7 days)",
		Long: `rotate issues a replacement key with the same owner, name and scope and prints it once. The
old key stays valid for --overlap (default: the server's, 7 days; at most 90 days; 0 ends it
at once), so clients can switch over, then it expires.`,
		Example: `  hictl apikey rotate 0b6c7a8e-1f2d-4e3c-9a8b-7c6d5e4f3a2b
  hictl apikey rotate 0b6c7a8e-1f2d-4e3c-9a8b-7c6d5e4f3a2b --overlap 48h`,
		Args: exactArgs(1, "KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUUID("KEY_ID", args[0], false); err != nil {
				return err
			}
			req := &authv1.RotateApiKeyRequest{Id: args[0]}
			if cmd.Flags().Changed("overlap") {
				d, err := parseDuration(overlap)
				if err != nil {
					return usageError{fmt.Errorf("--overlap: %w", err)}
				}
				if d < 0 || d > MaxRotateOverlap {
					return usageError{fmt.Errorf("--overlap %s: want 0 to 90d", overlap)}
				}
				req.Overlap = durationpb.New(d)
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.RotateApiKey(ctx, req)
				if err != nil {
					return c.wrap("rotate API key", err)
				}
				return printNewKey(cmd.OutOrStdout(), cmd.ErrOrStderr(), *out, quiet, "API key rotated", resp.GetSecret(), resp.GetApiKey(), resp.GetPrevious())
			})
		},
	}
	cmd.Flags().StringVar(&overlap, "overlap", "168h", "how long the old key stays valid, e.g. 168h or 7d (0: ends now)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the new key (the warning goes to standard error)")
	return cmd
}

func newAPIKeyRevokeCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "revoke KEY_ID",
		Short:   "Revoke a key now (services may honour it for up to 30 s from their caches)",
		Example: `  hictl apikey revoke 0b6c7a8e-1f2d-4e3c-9a8b-7c6d5e4f3a2b`,
		Args:    exactArgs(1, "KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUUID("KEY_ID", args[0], false); err != nil {
				return err
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.RevokeApiKey(ctx, &authv1.RevokeApiKeyRequest{Id: args[0]})
				if err != nil {
					return c.wrap("revoke API key", err)
				}
				w := cmd.OutOrStdout()
				k := resp.GetApiKey()
				if out.json() {
					return writeJSON(w, newAPIKeyView(k))
				}
				_, err = fmt.Fprintf(w, "API key revoked\nKey ID: %s\nName: %s\nUser ID: %s\nRevoked: %s\n",
					k.GetId(), k.GetName(), k.GetUserId(), orDash(formatTime(k.GetRevokeTime())))
				return err
			})
		},
	}
	return cmd
}
