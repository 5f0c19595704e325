import './base.css';
import './lineage.css';
