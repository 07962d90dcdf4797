package csv

import (
	"encoding/base64"
	"strings"

	"github.com/rosterd/roster/sources"
)

// groupScanLimit is how many groups a row may list before duplicates are
// found through a map rather than by comparing each pair.
const groupScanLimit = 16

// splitGroups splits the groups column on "|", trims each name, drops empty
// ones and drops later spellings of a name already listed, ignoring case.
func splitGroups(v string) []string {
	if v == "" {
		return nil
	}
	groups := make([]string, 0, strings.Count(v, "|")+1)
	var seen map[string]struct{}
	for g := range strings.SplitSeq(v, "|") {
		g = strings.TrimSpace(g)
		if g == "" {
			continue
		}
		if seen != nil {
			k := sources.FoldKey(g)
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
		} else {
			if containsFold(groups, g) {
				continue
			}
			if len(groups) == groupScanLimit {
				seen = make(map[string]struct{}, 2*groupScanLimit)
				for _, x := range groups {
					seen[sources.FoldKey(x)] = struct{}{}
				}
				seen[sources.FoldKey(g)] = struct{}{}
			}
		}
		groups = append(groups, g)
	}
	if len(groups) == 0 {
		return nil
	}
	return groups
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// validHash accepts the two hash formats roster writes into raw records.
func validHash(s string) bool {
	return validBcrypt(s) || validArgon2id(s)
}

// validBcrypt accepts "$2b$10$" followed by 53 characters of bcrypt's
// base64 alphabet (22 of salt, 31 of hash), with the $2a$ and $2y$ variants.
func validBcrypt(s string) bool {
	if len(s) != 60 || s[0] != '$' || s[1] != '2' || s[3] != '$' || s[6] != '$' {
		return false
	}
	if v := s[2]; v != 'a' && v != 'b' && v != 'y' {
		return false
	}
	if s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' {
		return false
	}
	if cost := int(s[4]-'0')*10 + int(s[5]-'0'); cost < 4 || cost > 31 {
		return false
	}
	for i := 7; i < len(s); i++ {
		c := rune(s[i])
		if !sources.IsASCIIAlnum(c) && c != '.' && c != '/' {
			return false
		}
	}
	return true
}

// validArgon2id accepts the PHC string format that
// golang.org/x/crypto/argon2 users write:
// "$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>", salt and hash in
// unpadded standard base64.
func validArgon2id(s string) bool {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return false
	}
	v, ok := strings.CutPrefix(parts[2], "v=")
	if !ok || !isDigits(v) {
		return false
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return false
	}
	for i, key := range []string{"m=", "t=", "p="} {
		n, ok := strings.CutPrefix(params[i], key)
		if !ok || !isDigits(n) {
			return false
		}
	}
	for _, b := range parts[4:] {
		if _, err := base64.RawStdEncoding.Strict().DecodeString(b); b == "" || err != nil {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	if s == "" || len(s) > 10 {
		return false
	}
	return strings.Trim(s, "0123456789") == ""
}
