"""Raw data folders as the downloaders of OGB, MoleculeNet and TU leave them, built offline from the
shipped molecules (plain functions shared by the tests, like graphs.py)."""
import os
import os.path as osp

import numpy as np
import pandas as pd
from ogb.utils import smiles2graph
from rdkit import Chem

SOLUBILITY = pd.read_csv(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "data", "solubility.csv"))


def write(path, text, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return str(path)


OGB_SMILES = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SOLUBILITY.smiles.iloc[:20]] + [
    "C[C@H](N)C(=O)O", "C", "CC(=O)[O-].[Na+]"]


def gz(frame, path):
    frame.to_csv(path, index=False, header=False, compression="gzip")


def make_ogb_raw(root, smiles, labels):
    """The folder OGB's downloader leaves for ogbg-molesol: raw/, mapping/, split/scaffold/."""
    base = osp.join(root, "ogbg_molesol")
    for sub in ("raw", "mapping", "split/scaffold"):
        os.makedirs(osp.join(base, sub))
    write(osp.join(base, "RELEASE_v1.txt"), "ogbg-molesol\n")
    graphs = [smiles2graph(s) for s in smiles]
    # OGB stores each bond once (add_inverse_edge=True restores the reverse).
    gz(pd.DataFrame(np.concatenate([g["edge_index"][:, ::2].T for g in graphs])), osp.join(base, "raw/edge.csv.gz"))
    gz(pd.DataFrame(np.concatenate([g["edge_feat"][::2] for g in graphs])), osp.join(base, "raw/edge-feat.csv.gz"))
    gz(pd.DataFrame(np.concatenate([g["node_feat"] for g in graphs])), osp.join(base, "raw/node-feat.csv.gz"))
    gz(pd.DataFrame([g["num_nodes"] for g in graphs]), osp.join(base, "raw/num-node-list.csv.gz"))
    gz(pd.DataFrame([g["edge_index"].shape[1] // 2 for g in graphs]), osp.join(base, "raw/num-edge-list.csv.gz"))
    gz(pd.DataFrame(labels), osp.join(base, "raw/graph-label.csv.gz"))
    pd.DataFrame({"measured log solubility in mols per litre": labels, "smiles": smiles}).to_csv(
        osp.join(base, "mapping/mol.csv.gz"), index=False, compression="gzip")
    n = len(smiles)
    for name, idx in (("train", range(0, n - 6)), ("valid", range(n - 6, n - 3)), ("test", range(n - 3, n))):
        gz(pd.DataFrame(list(idx)), osp.join(base, f"split/scaffold/{name}.csv.gz"))


def make_esol_raw(root, n: int = 10, invalid_row: bool = True) -> None:
    """The raw CSV PyG's MoleculeNet downloads for ESOL: the first ``n`` shipped
    molecules, then (``invalid_row``) one invalid SMILES."""
    raw = root / "esol" / "raw"
    raw.mkdir(parents=True)
    header = ("Compound ID,ESOL predicted log solubility in mols per litre,Minimum Degree,Molecular Weight,"
              "Number of H-Bond Donors,Number of Rings,Number of Rotatable Bonds,Polar Surface Area,"
              "measured log solubility in mols per litre,smiles\n")
    rows = [f'"{name}",0,1,2,0,0,0,0,{y},{s}\n'
            for name, y, s in zip(SOLUBILITY.name.iloc[:n], SOLUBILITY.log_solubility.iloc[:n],
                                  SOLUBILITY.smiles.iloc[:n])]
    if invalid_row:
        rows.append('"a, quoted, name",0,1,2,0,0,0,0,-1.0,C1CC\n')
    write(raw / "delaney-processed.csv", header + "".join(rows))


def make_tu_raw(root, name, smiles, labels):
    """The TU text format: 1-based node ids, one line per directed edge."""
    raw = osp.join(root, name, "raw")
    os.makedirs(raw)
    elements = {6: 0, 7: 1, 8: 2, 9: 3, 16: 4, 17: 5}
    edges, indicator, node_labels, edge_labels = [], [], [], []
    offset = 0
    for g, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        for atom in mol.GetAtoms():
            indicator.append(g + 1)
            node_labels.append(elements.get(atom.GetAtomicNum(), 6))
        for bond in mol.GetBonds():
            i, j = bond.GetBeginAtomIdx() + offset + 1, bond.GetEndAtomIdx() + offset + 1
            kind = int(bond.GetBondTypeAsDouble() * 2)
            edges += [f"{i}, {j}", f"{j}, {i}"]
            edge_labels += [kind, kind]
        offset += mol.GetNumAtoms()
    for suffix, lines in (("A", edges), ("graph_indicator", indicator), ("graph_labels", labels),
                          ("node_labels", node_labels), ("edge_labels", edge_labels)):
        write(osp.join(raw, f"{name}_{suffix}.txt"), "\n".join(map(str, lines)) + "\n")


