#!/bin/sh
# embed.sh NAME FILE: print a C file defining `const char NAME[]` with FILE's text.
set -eu
name=$1
file=$2
printf '/* generated from %s: do not edit */\nconst char %s[] =\n' "$file" "$name"
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$file"
printf ';\n'
