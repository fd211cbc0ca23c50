r"""RDKit molecules to prepared pLSTM DAG graphs (OGB or PyG atom/bond features)."""
from pyg_plstm.chem.convert import (
    FEATURES,
    MAX_SMILES_ATOMS,
    ORDERS,
    MolToDAG,
    as_target,
    atom_order,
    count_heavy_atoms,
    from_rdmol,
    from_smiles,
    parse_smiles,
    rdkit_quiet,
    reorder_nodes,
)

__all__ = [
    "FEATURES",
    "MAX_SMILES_ATOMS",
    "ORDERS",
    "MolToDAG",
    "as_target",
    "atom_order",
    "count_heavy_atoms",
    "from_rdmol",
    "from_smiles",
    "parse_smiles",
    "rdkit_quiet",
    "reorder_nodes",
]
