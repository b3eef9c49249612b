# Adapted from the shared peer scripts (../shared/peers/score.sh). Changes: decode_stats (counts the generated
# pieces per output line, rates from the peer's own translation time); score_hyp gives bleu=nan without a reference.
# usage: source score.sh; score_hyp HYP_DETOK_FILE [REF_FILE]  -> prints "bleu=.. hyp_words=.."
score_hyp() {
  local bleu=nan len
  if [ -n "${2:-}" ]; then bleu=$("$PEERS_ROOT/common/bin/sacrebleu" "$2" -i "$1" -b -w 2 2>/dev/null || echo nan); fi
  len=$(awk '{n+=NF} END{if (NR) printf "%.2f", n/NR; else print "nan"}' "$1")
  echo "bleu=$bleu hyp_words=$len"
}
# SentencePiece pieces -> text (same for every peer)
spm_detok() { sed -e 's/ //g' -e 's/▁/ /g' -e 's/^ //' "$@"; }
# decode_stats PIECES_FILE PEER_SECONDS -> "n_sent=N decode_sent_s=N/T decode_tok_s=G/T" where G = generated
# pieces (space-separated tokens of the peer's piece-level output; EOS is never written out)
decode_stats() {
  awk -v t="$2" '{n+=NF} END{if (t > 0) printf "n_sent=%d decode_sent_s=%.2f decode_tok_s=%.1f", NR, NR/t, n/t;
    else printf "n_sent=%d decode_sent_s=nan decode_tok_s=nan", NR}' "$1"
}
# decode_extra PIECES_FILE PEER_SECONDS -> "decode_s=T gen_tok=G out_len_min=.. out_len_max=.." (pieces per output line)
decode_extra() {
  awk -v t="$2" '{n+=NF; if (NR==1 || NF<mn) mn=NF; if (NF>mx) mx=NF}
    END{printf "decode_s=%.3f gen_tok=%d out_len_min=%d out_len_max=%d", t, n, mn, mx}' "$1"
}
