#!/usr/bin/env python3
"""Benchmark: what separates corpora, measured with scikit-learn on whole-file eGeMAPS functionals
(openSMILE's own features, no front end), each corpus of ../shared/corpora held out in turn
(BENCHMARKS.md, "Generalisation to unseen corpora").

    pip install scikit-learn pandas
    cargo build --release
    serd extract --features egemaps --window whole --format csv -q \
        $(find ../shared/corpora -name '*.flac' -o -name '*.wav' | sort) > egemaps_whole.csv
    python3 benches/corpus_normalisation.py egemaps_whole.csv base      # classifiers, per-speaker
                                                                        # normalisation, feature groups
    python3 benches/corpus_normalisation.py egemaps_whole.csv cnorm     # per-corpus normalisation
    python3 benches/corpus_normalisation.py egemaps_whole.csv stable    # features stable across corpora
    python3 benches/corpus_normalisation.py egemaps_whole.csv speaker   # without speaker-anatomy features

UAR over the classes the held-out corpus has. "speaker norm" and "corpus norm" standardise the
held-out data with statistics of all its recordings (transductive): upper bounds, not something
serd can do for one file or one user's session.
"""
import pandas as pd, numpy as np, re, sys, warnings
warnings.filterwarnings("ignore")
from sklearn.preprocessing import StandardScaler
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from sklearn.neural_network import MLPClassifier
from sklearn.metrics import balanced_accuracy_score, recall_score
df = pd.read_csv(sys.argv[1])
def meta(p):
    if '/ravdess/' in p:
        b=p.split('/')[-1].split('.')[0].split('-'); e={'01':'neutral','03':'happiness','04':'sadness','05':'anger','08':'surprise'}[b[2]]; return 'ravdess','r'+b[6],e
    if '/emodb/' in p:
        b=p.split('/')[-1]; e={'W':'anger','F':'happiness','T':'sadness','N':'neutral'}[b[5]]; return 'emodb','e'+b[:2],e
    b=p.split('/')[-2]; spk,em=b.split('_',1); e={'angry':'anger','happy':'happiness','sad':'sadness','neutral':'neutral','pleasant_surprised':'surprise','ps':'surprise'}[em]; return 'tess','t'+spk,e
m=df['file'].map(meta); df['corpus']=[x[0] for x in m]; df['speaker']=[x[1] for x in m]; df['label']=[x[2] for x in m]
feats=[c for c in df.columns if c not in ('file','t_start','t_end','voiced','corpus','speaker','label')]
C=['ravdess','emodb','tess']
def heldout(make, cols, norm=None, weight=None):
    res={}
    for c in C:
        tr=df[df.corpus!=c]; te=df[df.corpus==c]
        Xtr=tr[cols].values.astype(float); Xte=te[cols].values.astype(float)
        if norm=='speaker':
            Xtr=Xtr.copy(); Xte=Xte.copy()
            for d,X in ((tr,Xtr),(te,Xte)):
                for s in d.speaker.unique():
                    i=(d.speaker==s).values; X[i]=(X[i]-X[i].mean(0))/(X[i].std(0)+1e-9)
        sc=StandardScaler().fit(Xtr); Xtr=sc.transform(Xtr); Xte=sc.transform(Xte)
        Xtr=np.nan_to_num(Xtr); Xte=np.nan_to_num(Xte)
        clf=make(); 
        sw=None
        if weight=='corpus':
            cnt=tr.groupby(['corpus','label']).size(); nc=tr.groupby('corpus').label.nunique()
            sw=np.array([len(tr)/(tr.corpus.nunique()*nc[a]*cnt[(a,b)]) for a,b in zip(tr.corpus,tr.label)])
        try: clf.fit(Xtr,tr.label.values,sample_weight=sw)
        except TypeError: clf.fit(Xtr,tr.label.values)
        p=clf.predict(Xte)
        res[c]=recall_score(te.label.values,p,average='macro',labels=sorted(te.label.unique()))
    return res
def show(name,res): print(f"{name:55s} mean {np.mean(list(res.values())):.3f} "+" ".join(f"{k} {v:.3f}" for k,v in res.items()), flush=True)
LR=lambda C=0.01: (lambda: LogisticRegression(C=C,class_weight='balanced',max_iter=3000))
SV=lambda: SVC(C=1.0,class_weight='balanced')
MLP=lambda: MLPClassifier((128,),max_iter=300,random_state=0,alpha=1e-2)
groups={
 'F0':[f for f in feats if f.startswith('F0')],
 'loud':[f for f in feats if f.startswith('loudness') or 'Peaks' in f],
 'spectral':[f for f in feats if re.match(r'(alphaRatio|hammarberg|slope|spectralFlux|mfcc)',f)],
 'formant':[f for f in feats if re.match(r'F[123]',f)],
 'voice':[f for f in feats if re.match(r'(jitter|shimmer|HNR|logRelF0)',f)],
 'temporal':[f for f in feats if re.match(r'(Mean|Stddev)(Voiced|Unvoiced)|VoicedSegments',f)],
}
for g,v in groups.items(): print(g,len(v))
print('rest', [f for f in feats if not any(f in v for v in groups.values())])
what=sys.argv[2] if len(sys.argv)>2 else 'base'
if what=='base':
    show('LR C=0.01 all', heldout(LR(0.01),feats))
    show('LR C=0.1 all', heldout(LR(0.1),feats))
    show('LR C=0.001 all', heldout(LR(0.001),feats))
    show('SVM all', heldout(SV,feats))
    show('MLP all', heldout(MLP,feats))
    show('LR all, corpus weights', heldout(LR(0.01),feats,weight='corpus'))
    show('SVM all, speaker norm (upper bound)', heldout(SV,feats,norm='speaker'))
    show('LR all, speaker norm (upper bound)', heldout(LR(0.01),feats,norm='speaker'))
    for g in groups:
        show(f'LR without {g}', heldout(LR(0.01),[f for f in feats if f not in groups[g]]))
        show(f'LR only {g}', heldout(LR(0.01),groups[g]))
if what=='stable':
    def stable_cols(tr, thr):
        # emotion-effect profile per training corpus (z-scored globally), correlation between corpora
        X=(tr[feats]-tr[feats].mean())/(tr[feats].std()+1e-9)
        cs=tr.corpus.unique(); keep=[]
        for f in feats:
            prof={}
            for c in cs:
                d=X[tr.corpus==c]; lab=tr.label[tr.corpus==c]
                mu=d[f].groupby(lab).mean(); prof[c]=mu-mu.mean()
            shared=sorted(set.intersection(*[set(p.index) for p in prof.values()]))
            ps=[prof[c][shared].values for c in cs]
            r=np.corrcoef(ps[0],ps[1])[0,1]
            if r>thr: keep.append(f)
        return keep
    for thr in [0.0,0.5,0.8]:
        res={}
        for c in C:
            tr=df[df.corpus!=c]; te=df[df.corpus==c]
            cols=stable_cols(tr,thr)
            sc=StandardScaler().fit(tr[cols]); clf=LR(0.01)(); clf.fit(np.nan_to_num(sc.transform(tr[cols])),tr.label)
            p=clf.predict(np.nan_to_num(sc.transform(te[cols])))
            res[c]=recall_score(te.label,p,average='macro',labels=sorted(te.label.unique()))
            print(c, len(cols))
        show(f'LR stable thr {thr}',res)
if what=='cnorm':
    def corpus_norm(make, cols):
        res={}
        for c in C:
            tr=df[df.corpus!=c].copy(); te=df[df.corpus==c].copy()
            Xtr=tr[cols].values.astype(float).copy(); Xte=te[cols].values.astype(float)
            for cc in tr.corpus.unique():
                i=(tr.corpus==cc).values; Xtr[i]=(Xtr[i]-Xtr[i].mean(0))/(Xtr[i].std(0)+1e-9)
            Xte=(Xte-Xte.mean(0))/(Xte.std(0)+1e-9)
            clf=make(); clf.fit(np.nan_to_num(Xtr),tr.label)
            p=clf.predict(np.nan_to_num(Xte))
            res[c]=recall_score(te.label,p,average='macro',labels=sorted(te.label.unique()))
        return res
    show('LR corpus norm (transductive)', corpus_norm(LR(0.01),feats))
    show('MLP corpus norm (transductive)', corpus_norm(MLP,feats))
if what=='speaker':
    f0level=[f for f in feats if f.startswith('F0semitone') and re.search(r'(amean|percentile)',f)]
    formant=[f for f in feats if re.match(r'F[123](frequency|bandwidth)',f)]
    print(f0level, formant)
    for name,drop in [('none',[]),('F0 level',f0level),('formant freq/bw',formant),('both',f0level+formant),('both+temporal',f0level+formant+groups['temporal'])]:
        cols=[f for f in feats if f not in drop]
        show(f'LR drop {name}', heldout(LR(0.01),cols))
        show(f'MLP drop {name}', heldout(MLP,cols))
