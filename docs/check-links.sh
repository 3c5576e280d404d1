#!/bin/sh
# Check that every relative link in README.md and docs/*.md resolves: the file
# exists, and a #fragment names a heading of that file (GitHub's anchor rules:
# lower case, punctuation dropped, spaces to hyphens). Run from the repository
# root: sh docs/check-links.sh
set -u
status=0
anchors() {
    # Headings outside code fences, as GitHub anchors.
    awk '/^```/ { fence = !fence; next } !fence && /^#+ / { sub(/^#+ /, ""); print }' "$1" |
        tr 'A-Z' 'a-z' |
        sed -e 's/[^a-z0-9 _-]//g' -e 's/ /-/g'
}
for file in README.md docs/*.md; do
    dir=$(dirname "$file")
    # Inline links and images: ](target), outside code fences.
    awk '/^```/ { fence = !fence; next } !fence' "$file" |
        grep -o '](\([^)]*\))' | sed -e 's/^](//' -e 's/)$//' |
        while read -r target; do
            case $target in
                http://* | https://* | mailto:*) continue ;;
            esac
            path=${target%%#*}
            fragment=
            case $target in *'#'*) fragment=${target#*#} ;; esac
            if [ -z "$path" ]; then resolved=$file; else resolved=$dir/$path; fi
            if [ ! -e "$resolved" ]; then
                echo "$file: $target: no such file ($resolved)"
                echo x >>"${TMPDIR:-/tmp}/check-links.$$"
                continue
            fi
            if [ -n "$fragment" ]; then
                if ! anchors "$resolved" | grep -qx -- "$fragment"; then
                    echo "$file: $target: no heading #$fragment in $resolved"
                    echo x >>"${TMPDIR:-/tmp}/check-links.$$"
                fi
            fi
        done
done
if [ -e "${TMPDIR:-/tmp}/check-links.$$" ]; then
    rm -f "${TMPDIR:-/tmp}/check-links.$$"
    status=1
else
    echo "every relative link resolves"
fi
exit $status
