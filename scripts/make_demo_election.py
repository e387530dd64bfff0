"""Writes data/demo/wahl-o-mat/2099-demowahl/: a small, clearly fictional election in the
qual-o-mat layout (fictional parties, statements, positions, justifications), so the embedded
default model runs without downloading third-party data. Re-run to regenerate."""
import json
import os

OUT = "data/demo/wahl-o-mat/2099-demowahl"
PARTIES = [
    ("SA", "Soziale Allianz", "gerechte Löhne und einen starken Sozialstaat"),
    ("ÖU", "Ökologische Union", "Klimaschutz und eine intakte Natur"),
    ("FB", "Fortschrittsbund", "Modernisierung und gleiche Chancen für alle"),
    ("LM", "Liberale Mitte", "Eigenverantwortung und eine freie Wirtschaft"),
    ("KBP", "Konservative Bürgerpartei", "Sicherheit, Ordnung und solide Finanzen"),
    ("HL", "Heimatliste", "nationale Souveränität und den Schutz der Heimat"),
]
# (label, text, positions SA ÖU FB LM KBP HL) with A = agree, D = disagree, N = neutral
STATEMENTS = [
    ("Mindestlohn", "Der Mindestlohn soll deutlich erhöht werden.", "AAANDN"),
    ("Tempolimit", "Auf Autobahnen soll ein generelles Tempolimit gelten.", "AAADDD"),
    ("Grenzkontrollen", "Die Grenzkontrollen sollen dauerhaft verstärkt werden.", "DDDNAA"),
    ("Erneuerbare Energien", "Der Staat soll den Ausbau erneuerbarer Energien stärker fördern.", "AAANND"),
    ("Unternehmenssteuern", "Die Steuern für Unternehmen sollen gesenkt werden.", "DDNAAN"),
    ("Verteidigung", "Die Armee soll mehr Geld erhalten.", "DNAAAA"),
    ("Mietendeckel", "Mieten in Großstädten sollen gesetzlich gedeckelt werden.", "AANDDN"),
    ("Schuldenbremse", "Die Schuldenbremse soll gelockert werden.", "AAADDN"),
    ("Kernkraft", "Stillgelegte Kernkraftwerke sollen wieder in Betrieb gehen.", "DDDNAA"),
    ("Nahverkehr", "Der öffentliche Nahverkehr soll kostenlos sein.", "AANDDD"),
    ("Rentenalter", "Das Renteneintrittsalter soll erhöht werden.", "DNNAAD"),
    ("Volksabstimmungen", "Auf Bundesebene sollen Volksabstimmungen eingeführt werden.", "NANDDA"),
]
VERB = {"A": "Wir stimmen zu", "D": "Wir lehnen das ab", "N": "Wir sehen das differenziert"}
CODE = {"A": 0, "D": 1, "N": 2}

os.makedirs(OUT, exist_ok=True)
dump = lambda name, obj: json.dump(obj, open(os.path.join(OUT, name), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
dump("overview.json", {"title": "Demowahl 2099 (fiktiv)", "date": "2099-01-01", "info": "Fiktive Wahl für die Demo von probe; Parteien und Positionen sind erfunden.", "slug": "demowahl2099", "data_source": "probe (erfunden)"})
dump("answer.json", [{"id": 0, "message": "Stimme zu"}, {"id": 1, "message": "Stimme nicht zu"}, {"id": 2, "message": "Neutral"}])
dump("party.json", [{"id": i, "name": short, "longname": long} for i, (short, long, _) in enumerate(PARTIES)])
dump("statement.json", [{"id": i, "category": None, "label": label, "text": text} for i, (label, text, _) in enumerate(STATEMENTS)])
opinions, comments = [], []
for p, (short, long, value) in enumerate(PARTIES):
    for s, (label, text, positions) in enumerate(STATEMENTS):
        pos = positions[p]
        cid = len(comments)
        comments.append({"id": cid, "text": f"\"{VERB[pos]}. Beim Thema {label} geht es uns um {value}.\""})
        opinions.append({"id": len(opinions), "party": p, "statement": s, "answer": CODE[pos], "comment": cid})
dump("opinion.json", opinions)
dump("comment.json", comments)
print(f"wrote {OUT}: {len(PARTIES)} parties, {len(STATEMENTS)} statements, {len(opinions)} opinions")
