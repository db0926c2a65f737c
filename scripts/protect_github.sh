#!/usr/bin/env bash
# Branch protection on GitHub for the walkout org: the GitHub equivalent of the bare repositories'
# update hook (walkout_ci.hooks). Documented in ci/README.md ("GitHub equivalent"); not run by tests.
#
#   ORG=my-company scripts/protect_github.sh            # all four repositories
#   ORG=my-company scripts/protect_github.sh walkout    # just one
#
# Needs the GitHub CLI (`gh`) logged in with admin rights on the repositories. For each repository,
# `main` requires the check of its workflow's job (`model gate` in walkout-detection / -pose /
# -tracking, .github/workflows/gate.yml; `system QC` in walkout, .github/workflows/system-qc.yml),
# from GitHub Actions, on a branch that is up to date with main (strict: the verdict was made against
# the current tip, as the hook's "stale" refusal), for admins too; one approving review, code owners'
# review (put .github/ under CODEOWNERS: a pull request runs the workflow files it changes), no force
# pushes, no deletion.
set -euo pipefail

: "${ORG:?set ORG to the GitHub organization (or user) that holds the repositories}"
ACTIONS_APP_ID=15368  # GitHub Actions: only its check runs satisfy the required checks

check_for() {
  case "$1" in
    walkout) echo "system QC" ;;
    walkout-*) echo "model gate" ;;
    *) echo "unknown repository $1 (expected walkout or walkout-<component>)" >&2; return 2 ;;
  esac
}

protect() {
  local repo="$1" check
  check="$(check_for "$repo")"
  echo "protecting $ORG/$repo main: required check '$check'"
  gh api --method PUT "repos/$ORG/$repo/branches/main/protection" --input - <<JSON
{
  "required_status_checks": {"strict": true, "checks": [{"context": "$check", "app_id": $ACTIONS_APP_ID}]},
  "enforce_admins": true,
  "required_pull_request_reviews": {"required_approving_review_count": 1, "require_code_owner_reviews": true,
                                    "dismiss_stale_reviews": true},
  "restrictions": null,
  "required_linear_history": false,
  "allow_force_pushes": false,
  "allow_deletions": false
}
JSON
}

repos=("$@")
if [ ${#repos[@]} -eq 0 ]; then
  repos=(walkout-detection walkout-pose walkout-tracking walkout)
fi
for repo in "${repos[@]}"; do
  protect "$repo"
done
