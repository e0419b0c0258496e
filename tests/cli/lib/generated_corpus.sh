# Sourced by tests/cli/*.sh: generated_corpus SEED prints ~70 KB of sentences drawn from a 32-word vocabulary by a
# linear congruential generator started at SEED: the same bytes for the same SEED on every machine.
generated_corpus() {
  awk -v state="$1" 'BEGIN {
    n = split("in the beginning god created heaven and earth was without form void darkness upon face of deep " \
              "spirit moved waters said let there be light saw that it good divided from", w, " ")
    line = ""
    for (i = 0; i < 12000; i++) {
      state = (state * 1103515245 + 12345) % 2147483648
      line = line w[int(state / 65536) % n + 1] " "
      if (i % 11 == 10) { print line "."; line = "" }
    }
  }'
}
