package accounts

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// ParseMap reads an account map (ACCOUNT_MAP_FILE): one "SLACK_USER_ID
// account" pair per line, separated by spaces or "=", with blank lines and
// "#" comments allowed:
//
//	# Alice's Slack email is not her directory mail
//	U0123ABCD alice.smith
//	U0456EFGH = bob
//
// It returns every problem found, one per line, naming the line.
func ParseMap(r io.Reader) (map[string]string, []string) {
	m := map[string]string{}
	var problems []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(strings.Replace(line, "=", " ", 1))
		if len(fields) != 2 {
			problems = append(problems, fmt.Sprintf("line %d: want \"SLACK_USER_ID account\", got %q", n, line))
			continue
		}
		id, name := fields[0], fields[1]
		switch {
		case !slackUserID.MatchString(id):
			problems = append(problems, fmt.Sprintf("line %d: %q is not a Slack user ID (U... or W...)", n, id))
		case m[id] != "":
			problems = append(problems, fmt.Sprintf("line %d: %s is mapped twice", n, id))
		default:
			if err := CheckName(name); err != nil {
				problems = append(problems, fmt.Sprintf("line %d: %v", n, err))
				continue
			}
			m[id] = name
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, err.Error())
	}
	return m, problems
}
