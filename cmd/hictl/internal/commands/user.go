package commands

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	authv1 "github.com/hashinsight/platform/proto/hashinsight/auth/v1"
)

// userView is a user as `--output json` prints it.
type userView struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	DisplayName   string   `json:"display_name,omitempty"`
	Role          string   `json:"role"`
	CustomerID    string   `json:"customer_id,omitempty"`
	CustomerIDs   []string `json:"customer_ids,omitempty"`
	Permissions   []string `json:"permissions"`
	Disabled      bool     `json:"disabled"`
	DisableTime   string   `json:"disable_time,omitempty"`
	LastLoginTime string   `json:"last_login_time,omitempty"`
	CreateTime    string   `json:"create_time,omitempty"`
	UpdateTime    string   `json:"update_time,omitempty"`
}

func newUserView(u *authv1.User) userView {
	perms := u.GetPermissions()
	if perms == nil {
		perms = []string{}
	}
	return userView{
		ID:            u.GetId(),
		Email:         u.GetEmail(),
		DisplayName:   u.GetDisplayName(),
		Role:          roleName(u.GetRole()),
		CustomerID:    u.GetCustomerId(),
		CustomerIDs:   u.GetCustomerIds(),
		Permissions:   perms,
		Disabled:      u.GetDisabled(),
		DisableTime:   formatTime(u.GetDisableTime()),
		LastLoginTime: formatTime(u.GetLastLoginTime()),
		CreateTime:    formatTime(u.GetCreateTime()),
		UpdateTime:    formatTime(u.GetUpdateTime()),
	}
}

// printUser prints the manual's "User created / ID / Email / Role" block
// (headline varies) or the user as JSON.
func printUser(w io.Writer, out outputFlag, headline string, u *authv1.User) error {
	if out.json() {
		return writeJSON(w, newUserView(u))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nID: %s\nEmail: %s\nRole: %s\n", headline, u.GetId(), u.GetEmail(), roleName(u.GetRole()))
	if u.GetDisplayName() != "" {
		fmt.Fprintf(&b, "Name: %s\n", u.GetDisplayName())
	}
	if u.GetCustomerId() != "" {
		fmt.Fprintf(&b, "Customer ID: %s\n", u.GetCustomerId())
	}
	if ids := u.GetCustomerIds(); len(ids) > 0 {
		fmt.Fprintf(&b, "Customers: %s\n", strings.Join(ids, ", "))
	}
	if u.GetDisabled() {
		fmt.Fprintf(&b, "Disabled: %s\n", orDash(formatTime(u.GetDisableTime())))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newUserCmd(s IO) *cobra.Command {
	var (
		af  authFlags
		out outputFlag
	)
	cmd := newGroupCmd("user", "Manage users: create, list, change role, assign a broker's customers, disable",
		`user manages HashInsight users through the auth service, over gRPC with the operator
certificate (hictl acts as operator/<name> with every permission). The first owner of a new
installation is created this way:

  hictl user create --email admin@hashinsight.net --name admin --role owner --password-prompt`)
	af.registerOn(cmd)
	out.register(cmd)
	cmd.AddCommand(
		newUserCreateCmd(s, &af, &out),
		newUserListCmd(s, &af, &out),
		newUserRoleCmd(s, &af, &out),
		newUserCustomersCmd(s, &af, &out),
		newUserDisableCmd(s, &af, &out),
	)
	return cmd
}

// withAuth validates --output, connects and runs f.
func withAuth(cmd *cobra.Command, s IO, af *authFlags, out *outputFlag, f func(context.Context, *authClient) error) error {
	if out != nil {
		if err := out.validate(); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	c, err := af.connect(ctx, s)
	if err != nil {
		return err
	}
	defer c.Close()
	return f(ctx, c)
}

func newUserCreateCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var (
		email, name, role, customerID string
		prompt, fromStdin             bool
	)
	cmd := &cobra.Command{
		Use:   "create --email EMAIL --role ROLE (--password-prompt | --password-stdin)",
		Short: "Create a user (the first owner, or any other)",
		Long: `create adds a user with a role: owner, admin, broker or client (a client is bound to one
customer: --customer-id). The password is never a flag value: --password-prompt asks for it
twice on the terminal without echo, --password-stdin reads the first line of standard input.`,
		Example: `  hictl user create --email admin@hashinsight.net --name admin --role owner --password-prompt
  printf '%s\n' "$PW" | hictl user create --email ops@example.com --role admin --password-stdin
  hictl user create --email c@example.com --role client --customer-id 8e0c...-... --password-prompt`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" {
				return usageError{fmt.Errorf("--email is required")}
			}
			if role == "" {
				return usageError{fmt.Errorf("--role is required (one of %s)", strings.Join(roleNames(), ", "))}
			}
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			if err := checkCustomer(r, customerID); err != nil {
				return err
			}
			var password string
			switch {
			case prompt && fromStdin:
				return usageError{fmt.Errorf("give --password-prompt or --password-stdin, not both")}
			case prompt:
				if password, err = promptPassword(cmd.Context(), s.ReadPassword); err != nil {
					return err
				}
			case fromStdin:
				if password, err = readPasswordLine(s.Stdin); err != nil {
					return err
				}
			default:
				return usageError{fmt.Errorf("the password: give --password-prompt (interactive) or --password-stdin (scripts); it is never a flag value")}
			}
			if err := out.validate(); err != nil {
				return err
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.CreateUser(ctx, &authv1.CreateUserRequest{
					Email:       email,
					Password:    password,
					DisplayName: name,
					Role:        r,
					CustomerId:  customerID,
				})
				if err != nil {
					return c.wrap("create user", err)
				}
				return printUser(cmd.OutOrStdout(), *out, "User created", resp.GetUser())
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "login email (required)")
	f.StringVar(&name, "name", "", "display name (--username is accepted too)")
	f.StringVar(&role, "role", "", "role: owner, admin, broker or client (required)")
	f.StringVar(&customerID, "customer-id", "", "customer UUID a client is bound to (required for, and only for, --role client)")
	f.BoolVar(&prompt, "password-prompt", false, "ask for the password on the terminal (twice, no echo)")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.SetNormalizeFunc(aliases(map[string]string{"username": "name"}))
	return cmd
}

// checkCustomer enforces the API's rule: a customer for clients, none for other roles.
func checkCustomer(r authv1.Role, customerID string) error {
	switch {
	case r == authv1.Role_ROLE_CLIENT && customerID == "":
		return usageError{fmt.Errorf("--customer-id is required for --role client")}
	case r != authv1.Role_ROLE_CLIENT && customerID != "":
		return usageError{fmt.Errorf("--customer-id is only for --role client")}
	}
	return checkUUID("--customer-id", customerID, true)
}

func newUserListCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var (
		pageSize        int32
		pageToken       string
		all             bool
		role, query     string
		includeDisabled bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List users (one page, or every page with --all)",
		Example: `  hictl user list
  hictl user list --all --role admin -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPageSize(pageSize); err != nil {
				return err
			}
			var r authv1.Role
			if role != "" {
				var err error
				if r, err = parseRole(role); err != nil {
					return err
				}
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				users, next, err := collectPages(ctx, pageToken, all, func(ctx context.Context, token string) ([]*authv1.User, string, error) {
					ctx, cancel := c.callCtx(ctx)
					defer cancel()
					resp, err := c.ListUsers(ctx, &authv1.ListUsersRequest{
						PageSize:        pageSize,
						PageToken:       token,
						Role:            r,
						IncludeDisabled: includeDisabled,
						Query:           query,
					})
					if err != nil {
						return nil, "", c.wrap("list users", err)
					}
					return resp.GetUsers(), resp.GetNextPageToken(), nil
				})
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				if out.json() {
					views := make([]userView, 0, len(users))
					for _, u := range users {
						views = append(views, newUserView(u))
					}
					return writeJSON(w, struct {
						Users         []userView `json:"users"`
						NextPageToken string     `json:"next_page_token,omitempty"`
					}{views, next})
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tCUSTOMER\tSTATUS\tCREATED")
				for _, u := range users {
					st := "active"
					if u.GetDisabled() {
						st = "disabled"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", u.GetId(), u.GetEmail(), orDash(u.GetDisplayName()),
						roleName(u.GetRole()), orDash(u.GetCustomerId()), st, orDash(formatTime(u.GetCreateTime())))
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
	f.Int32Var(&pageSize, "page-size", 0, "users per page (0: the server's default of 50; at most 1000)")
	f.StringVar(&pageToken, "page-token", "", "continue from this page token (printed after a partial list)")
	f.BoolVar(&all, "all", false, "follow page tokens and list every user")
	f.StringVar(&role, "role", "", "only users with this role")
	f.StringVar(&query, "query", "", "only users whose email or name contains this (case-insensitive)")
	f.BoolVar(&includeDisabled, "include-disabled", false, "include disabled users")
	return cmd
}

// morePages tells the operator how to get the next page.
func morePages(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "more results: --page-token %s (or --all)\n", next)
	}
}

func newUserRoleCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var role, customerID string
	cmd := &cobra.Command{
		Use:   "role USER_ID --role ROLE",
		Short: "Change a user's role",
		Long: `role changes a user's role (and, for --role client, its customer). Access tokens already
issued keep the old role until they expire (at most 15 minutes); refreshes pick up the new one.`,
		Example: `  hictl user role 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f --role admin`,
		Args:    exactArgs(1, "USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUUID("USER_ID", args[0], false); err != nil {
				return err
			}
			if role == "" {
				return usageError{fmt.Errorf("--role is required (one of %s)", strings.Join(roleNames(), ", "))}
			}
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			if err := checkCustomer(r, customerID); err != nil {
				return err
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.ChangeUserRole(ctx, &authv1.ChangeUserRoleRequest{Id: args[0], Role: r, CustomerId: customerID})
				if err != nil {
					return c.wrap("change role", err)
				}
				return printUser(cmd.OutOrStdout(), *out, "User role changed", resp.GetUser())
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "new role: owner, admin, broker or client (required; --new-role is accepted too)")
	cmd.Flags().StringVar(&customerID, "customer-id", "", "customer UUID, required for --role client")
	cmd.Flags().SetNormalizeFunc(aliases(map[string]string{"new-role": "role"}))
	return cmd
}

func newUserCustomersCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var (
		customers []string
		none      bool
	)
	cmd := &cobra.Command{
		Use:   "customers BROKER_USER_ID (--customer CUSTOMER_ID ... | --none)",
		Short: "Set the customers assigned to a broker",
		Long: `customers replaces the set of customers assigned to a broker user (its tenant scope) with the
given ones; --none removes every assignment. Only brokers have assigned customers (a client's
single customer is set with "user role --role client --customer-id"). Access tokens already
issued keep the old scope until they expire (at most 15 minutes); the next login or refresh
carries the new one.`,
		Example: `  hictl user customers 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f --customer 0b7e7a34-9c2f-4d55-8f0e-2d1c5b7a9e01 --customer 5f0c8e21-3b6d-4a7e-9c14-8e2f6a0d3b02
  hictl user customers 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f --none`,
		Args: exactArgs(1, "BROKER_USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUUID("BROKER_USER_ID", args[0], false); err != nil {
				return err
			}
			switch {
			case none && len(customers) > 0:
				return usageError{fmt.Errorf("--none and --customer exclude each other")}
			case !none && len(customers) == 0:
				return usageError{fmt.Errorf("give the customers with --customer (repeatable), or --none to remove them all")}
			}
			for _, id := range customers {
				if err := checkUUID("--customer", id, false); err != nil {
					return err
				}
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.SetUserCustomers(ctx, &authv1.SetUserCustomersRequest{Id: args[0], CustomerIds: customers})
				if err != nil {
					return c.wrap("set customers", err)
				}
				if err := printUser(cmd.OutOrStdout(), *out, "User customers set", resp.GetUser()); err != nil || out.json() {
					return err
				}
				if len(resp.GetUser().GetCustomerIds()) == 0 {
					_, err = io.WriteString(cmd.OutOrStdout(), "Customers: -\n")
				}
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&customers, "customer", nil, "customer UUID assigned to the broker (repeatable)")
	cmd.Flags().BoolVar(&none, "none", false, "remove every assigned customer")
	return cmd
}

func newUserDisableCmd(s IO, af *authFlags, out *outputFlag) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "disable USER_ID",
		Short:   "Disable a user and revoke its sessions and API keys",
		Example: `  hictl user disable 5f0c1d2e-3a4b-4c5d-8e9f-0a1b2c3d4e5f --reason "left the company"`,
		Args:    exactArgs(1, "USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkUUID("USER_ID", args[0], false); err != nil {
				return err
			}
			return withAuth(cmd, s, af, out, func(ctx context.Context, c *authClient) error {
				ctx, cancel := c.callCtx(ctx)
				defer cancel()
				resp, err := c.DisableUser(ctx, &authv1.DisableUserRequest{Id: args[0], Reason: reason})
				if err != nil {
					return c.wrap("disable user", err)
				}
				return printUser(cmd.OutOrStdout(), *out, "User disabled", resp.GetUser())
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the audit log")
	return cmd
}
