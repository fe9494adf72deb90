#!/usr/bin/env python3
"""Write data/sample/feelings_multilabel.csv: the project's own multi-label Korean sample dataset.

    .venv/bin/python scripts/make_feelings_sample.py            # rewrites the CSV (deterministic)
    .venv/bin/python scripts/make_feelings_sample.py --stats    # and prints its figures

Every utterance is composed here from clause fragments written for this project (nothing copied
from a corpus, a website or a real conversation), plus a list of fully hand-written rows. A fragment
is one feeling said one way, in the forms the composer needs:

    prefix | 고-form | 서-form | 는데-form | final forms (/) | after

- 고-form joins clauses ("허리가 쑤시고"); the 지만-form is derived from it (쑤시고 -> 쑤시지만),
  or from a past 는데-form (못 잤는데 -> 못 잤지만).
- 서-form (or `-`) makes the fragment a cause ("허리가 쑤셔서 ...").
- `after` (or `-`) marks a fragment that can follow a cause: the labels whose 서-forms may come
  before it ("허리가 쑤셔서" + "밤새 한숨도 못 잤어").

Label sets are spread over all 28 pairs and 56 triples of the 8 labels, plus a few single-label
rows; fragments are drawn least-used first, and a candidate too close to an earlier row (character
3-gram Jaccard >= 0.6, spaces removed) is drawn again. Clauses of the same colour of feeling stay
together, and the turn between negative and positive ones gets 지만, 는데, 근데 or 그래도.
About 13 % of rows get STT spacing errors. Seeded: the same code writes the same file. Only the
standard library.
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import Counter
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = REPO_ROOT / "data" / "sample" / "feelings_multilabel.csv"
SEED = 20240611
ID_PREFIX = "fml"

# The 8 labels, in the order they are written in the `labels` column.
LABELS = ["기쁨", "슬픔", "분노", "불안", "외로움", "피로", "통증", "감사"]
POSITIVE = {"기쁨", "감사"}

FRAGMENTS = {
    "통증": """
허리가 | 쑤시고 | 쑤셔서 | 쑤시는데 | 쑤셔/너무 쑤시네/쑤셔 죽겠어 | -
무릎이 | 시큰거리고 | 시큰거려서 | 시큰거리는데 | 시큰거려/자꾸 시큰거리네 | -
어깨가 결려서 팔이 | 안 올라가고 | - | 안 올라가는데 | 안 올라가/잘 안 올라가네 | -
머리가 | 지끈거리고 | 지끈거려서 | 지끈거리는데 | 지끈지끈해/깨질 것 같아 | 피로,불안,분노
다리가 | 저리고 | 저려서 | 저린데 | 저려/자꾸 저리네 | -
이가 | 욱신거리고 | 욱신거려서 | 욱신거리는데 | 욱신거려/욱신욱신해 | -
속이 | 쓰리고 | 쓰려서 | 쓰린데 | 쓰려/계속 쓰리네 | 불안,분노
손가락 마디마디가 | 아프고 | 아파서 | 아픈데 | 다 아파/다 쑤셔 | -
허리를 삐끗했는지 | 움직일 때마다 아프고 | - | 움직일 때마다 아픈데 | 움직일 때마다 아파/꼼짝을 못 하겠어 | -
배가 | 살살 아프고 | 살살 아파서 | 살살 아픈데 | 살살 아파/자꾸 살살 아프네 | 불안
목이 | 뻣뻣하고 아프고 | 뻣뻣하고 아파서 | 뻣뻣하고 아픈데 | 뻣뻣하고 아파/뻣뻣해서 안 돌아가 | 피로
관절이 | 욱신욱신하고 | 욱신욱신해서 | 욱신욱신한데 | 욱신욱신해/다 욱신거려 | -
비가 오려는지 온몸이 | 쑤시고 | 쑤셔서 | 쑤시는데 | 쑤셔/욱신거리네 | -
발뒤꿈치가 | 찌릿찌릿하고 | 찌릿찌릿해서 | 찌릿찌릿한데 | 찌릿찌릿해/찌릿하네 | -
등이 | 결리고 | 결려서 | 결리는데 | 결려/너무 결리네 | 피로
눈이 | 따끔거리고 | 따끔거려서 | 따끔거리는데 | 따끔거려/따끔따끔해 | 피로
옆구리가 | 콕콕 쑤시고 | 콕콕 쑤셔서 | 콕콕 쑤시는데 | 콕콕 쑤셔/결리네 | -
수술한 데가 | 아직 아프고 | 아직 아파서 | 아직 아픈데 | 아직도 아파/욱신거려 | -
계단만 오르면 무릎이 | 아프고 | - | 아픈데 | 아파/시큰해 | -
손목이 | 시큰하고 | 시큰해서 | 시큰한데 | 시큰해/시큰시큰하네 | -
두통이 | 계속되고 | 계속돼서 | 계속되는데 | 계속돼/안 가시네 | 피로,불안
꼬리뼈가 | 아프고 | 아파서 | 아픈데 | 아파서 못 앉겠어/너무 아파 | -
팔꿈치가 | 저릿저릿하고 | 저릿저릿해서 | 저릿저릿한데 | 저릿저릿해/저릿하네 | -
종아리에 | 쥐가 자꾸 나고 | 쥐가 자꾸 나서 | 쥐가 자꾸 나는데 | 쥐가 나서 아파/쥐가 나서 죽겠어 | -
온 삭신이 | 쑤시고 | 쑤셔서 | 쑤시는데 | 다 쑤셔/안 쑤시는 데가 없어 | 피로
파스를 붙여도 허리가 | 계속 아프고 | 계속 아파서 | 계속 아픈데 | 여전히 아파/계속 아파 | -
""",
    "피로": """
밤새 한숨도 | 못 자고 | 못 자서 | 못 잤는데 | 못 잤어/못 잤네 | 통증,불안,분노,슬픔,외로움
요즘 통 | 잠이 안 오고 | 잠이 안 와서 | 잠이 안 오는데 | 잠이 안 와/잠이 안 오네 | 불안,외로움,슬픔,분노
몸이 | 천근만근이고 | 천근만근이라 | 천근만근인데 | 천근만근이야/천근만근이네 | 통증,슬픔
새벽에 자꾸 | 깨고 | 깨서 | 깨는데 | 깨/깨네/깨더라 | 통증,불안
낮에도 자꾸 | 졸리고 | 졸려서 | 졸린데 | 졸려/꾸벅꾸벅 졸아 | -
조금만 움직여도 | 기운이 없고 | - | 기운이 없는데 | 기운이 하나도 없어/금방 지쳐 | -
괜히 몸이 | 나른하고 | 나른해서 | 나른한데 | 나른해/축 처지네 | -
잠을 설쳐서 머리가 | 멍하고 | - | 멍한데 | 멍해/멍하네 | -
눕기만 하면 | 눈이 말똥말똥하고 | 눈이 말똥말똥해서 | 눈이 말똥말똥한데 | 눈이 말똥말똥해 | -
수면제를 먹어도 | 잠이 들지를 않고 | 잠이 안 들어서 | 잠이 안 드는데 | 잠이 안 들어/소용이 없어 | -
하루 종일 | 기운이 쭉 빠지고 | 기운이 쭉 빠져서 | 기운이 쭉 빠지는데 | 기운이 쭉 빠져/축 늘어져 | 통증,슬픔
밤에 화장실 가느라 | 몇 번씩 깨고 | 몇 번씩 깨서 | 몇 번씩 깨는데 | 몇 번씩 깨/잠을 못 자 | -
눈꺼풀이 | 자꾸 무겁고 | 자꾸 무거워서 | 자꾸 무거운데 | 자꾸 감겨/천근만근이야 | -
자도 자도 | 피곤하고 | 피곤해서 | 피곤한데 | 피곤해/개운하지가 않아 | -
아침에 일어나기가 | 너무 힘들고 | 너무 힘들어서 | 너무 힘든데 | 너무 힘들어/힘드네 | -
온몸에 힘이 | 하나도 없고 | 하나도 없어서 | 하나도 없는데 | 하나도 없어/쭉 빠졌어 | 통증
새벽 세 시면 | 눈이 떠지고 | 눈이 떠져서 | 눈이 떠지는데 | 눈이 떠져/눈이 번쩍 떠져 | -
잠을 자도 | 잔 것 같지가 않고 | 잔 것 같지가 않아서 | 잔 것 같지 않은데 | 잔 것 같지가 않아 | -
몸이 | 축 처지고 | 축 처져서 | 축 처지는데 | 축 처져/자꾸 처지네 | 슬픔
밤새 | 뒤척이고 | 뒤척여서 | 뒤척였는데 | 뒤척였어/뒤척이기만 했어 | 통증,불안,외로움,분노
꿈자리가 사나워서 | 잠을 설치고 | - | 잠을 설쳤는데 | 잠을 설쳤어/잠을 다 설쳤네 | -
산책만 조금 해도 | 녹초가 되고 | 녹초가 돼서 | 녹초가 되는데 | 녹초가 돼/금방 지쳐 | -
티비 보다가도 | 꾸벅꾸벅 졸고 | 꾸벅꾸벅 졸아서 | 꾸벅꾸벅 조는데 | 꾸벅꾸벅 졸아/자꾸 졸아 | -
요새 며칠째 | 잠을 못 자고 | 잠을 못 자서 | 잠을 못 잤는데 | 잠을 못 잤어/제대로 못 잤어 | 통증,불안,분노,슬픔
몸이 물먹은 솜처럼 | 무겁고 | 무거워서 | 무거운데 | 무거워/축 늘어져 | -
""",
    "슬픔": """
자꾸 | 눈물이 나고 | 눈물이 나서 | 눈물이 나는데 | 눈물이 나/눈물만 나네 | 통증,외로움,분노,불안
마음이 | 울적하고 | 울적해서 | 울적한데 | 울적해/너무 울적하네 | 외로움,통증
먼저 간 영감 생각에 | 가슴이 미어지고 | 가슴이 미어져서 | 가슴이 미어지는데 | 가슴이 미어져 | -
괜히 | 서글프고 | 서글퍼서 | 서글픈데 | 서글퍼/서글프네 | -
사는 게 | 서럽고 | 서러워서 | 서러운데 | 서러워/서럽네 | 외로움,통증
키우던 강아지가 떠나서 | 너무 슬프고 | - | 너무 슬픈데 | 너무 슬퍼/눈물이 나 | -
친구가 세상을 떠났다니 | 가슴이 먹먹하고 | 가슴이 먹먹해서 | 가슴이 먹먹한데 | 가슴이 먹먹해 | -
옛날 사진을 보니 | 마음이 짠하고 | 마음이 짠해서 | 마음이 짠한데 | 마음이 짠하네/눈물이 핑 도네 | -
요즘은 사는 낙이 | 하나도 없고 | 하나도 없어서 | 하나도 없는데 | 하나도 없어/없네 | -
기분이 | 축 가라앉고 | 축 가라앉아서 | 축 가라앉는데 | 축 가라앉아/영 가라앉네 | 외로움,피로,통증
고향 집이 없어졌다니 | 너무 섭섭하고 | 너무 섭섭해서 | 너무 섭섭한데 | 너무 섭섭해/서운하네 | -
거울 속 늙은 내 모습이 | 처량하고 | 처량해서 | 처량한데 | 처량해/처량하네 | -
영감 제삿날이 다가오니 | 울컥하고 | 울컥해서 | 울컥하는데 | 자꾸 울컥해/울컥하네 | -
딸이 이민 간다니 | 마음이 무너지고 | 마음이 무너져서 | 마음이 무너지는데 | 마음이 무너져 | -
요즘은 그냥 | 우울하고 | 우울해서 | 우울한데 | 우울해/우울하네 | 외로움,통증
옛 노래를 들으니 | 왈칵 눈물이 나고 | 왈칵 눈물이 나서 | 왈칵 눈물이 나는데 | 왈칵 눈물이 나 | -
내가 쓸모없는 사람 같아서 | 속상하고 | - | 속상한데 | 속상해/속상하네 | -
먼저 간 친구들 생각하면 | 가슴이 아리고 | 가슴이 아려서 | 가슴이 아린데 | 가슴이 아려 | -
아들 내외가 싸웠다니 | 마음이 안 좋고 | 마음이 안 좋아서 | 마음이 안 좋은데 | 마음이 안 좋아/속상하네 | -
하늘만 봐도 | 눈물이 핑 돌고 | 눈물이 핑 돌아서 | 눈물이 핑 도는데 | 눈물이 핑 돌아 | -
살아온 세월이 | 허무하고 | 허무해서 | 허무한데 | 허무해/허무하네 | -
영감 옷을 정리하다가 | 펑펑 울고 | 펑펑 울어서 | 펑펑 울었는데 | 펑펑 울었어 | -
요즘 자꾸 슬픈 생각만 | 들고 | 들어서 | 드는데 | 들어/드네 | 외로움,통증
몸이 아프니까 | 서글프고 | - | 서글픈데 | 서글퍼/처량해 | -
""",
    "분노": """
아들이 말을 안 들어서 | 화가 나고 | - | 화가 나는데 | 화가 나/속이 터져 | -
괜히 | 짜증이 나고 | 짜증이 나서 | 짜증이 나는데 | 짜증이 나/짜증 나네 | 통증,피로
며느리가 말을 함부로 해서 | 화가 치밀고 | - | 화가 치미는데 | 화가 치밀어/부아가 나 | -
윗집이 밤마다 쿵쾅거려서 | 열불이 나고 | - | 열불이 나는데 | 열불이 나/약이 오르네 | -
택배 기사가 물건을 던지고 가서 | 기분이 나쁘고 | - | 기분이 나쁜데 | 기분 나빠/괘씸해 | -
자식들이 내 말을 무시해서 | 속이 터지고 | - | 속이 터지는데 | 속이 터져/분통이 터져 | -
속에서 | 울화가 치밀고 | 울화가 치밀어서 | 울화가 치미는데 | 울화가 치밀어/울화통이 터져 | 통증,외로움
병원에서 한참 기다리게 해서 | 부아가 나고 | - | 부아가 나는데 | 부아가 나/성질이 나 | -
전화 사기꾼이 또 전화해서 | 열이 받고 | - | 열 받는데 | 열 받아/괘씸하네 | -
옆집 개가 밤새 짖어서 | 신경질이 나고 | - | 신경질이 나는데 | 신경질 나/짜증 나 죽겠어 | -
아무도 내 말을 안 믿어줘서 | 억울하고 분하고 | - | 억울하고 분한데 | 억울하고 분해/분통이 터져 | -
이 기계가 또 말귀를 못 알아들어서 | 답답하고 화가 나고 | - | 화가 나는데 | 답답해서 화가 나 | -
가게 주인이 거스름돈을 속여서 | 분하고 | - | 분한데 | 분해/괘씸해 죽겠어 | -
누가 내 화분을 가져가서 | 약이 오르고 | - | 약이 오르는데 | 약이 올라/괘씸해 | -
요양보호사가 자꾸 늦게 와서 | 짜증이 나고 | - | 짜증이 나는데 | 짜증 나/성질 나 | -
생각할수록 | 괘씸하고 | 괘씸해서 | 괘씸한데 | 괘씸해/괘씸하네 | -
딸이 내 물건을 말도 없이 버려서 | 화가 나고 | - | 화가 나는데 | 화가 나/부아가 치밀어 | -
손주가 버릇없이 굴어서 | 언짢고 | - | 언짢은데 | 언짢아/기분이 상해 | -
관리비가 또 올라서 | 부아가 치밀고 | - | 부아가 치미는데 | 부아가 치밀어/열불 나 | -
버스 기사가 문을 확 닫아서 | 성질이 나고 | - | 성질이 나는데 | 성질 나/화딱지 나 | -
내가 바보 취급을 당해서 | 분통이 터지고 | - | 분통이 터지는데 | 분통이 터져 | -
자꾸 | 화가 치밀고 | 화가 치밀어서 | 화가 치미는데 | 화가 치밀어/성질이 나 | 통증,피로
아들놈이 또 돈 얘기만 해서 | 속에서 천불이 나고 | - | 속에서 천불이 나는데 | 속에서 천불이 나 | -
동생이 나한테 소리를 질러서 | 기가 막히고 | - | 기가 막히는데 | 기가 막혀/어이가 없어 | -
""",
    "불안": """
병원 검사 결과가 | 걱정되고 | 걱정돼서 | 걱정되는데 | 걱정돼/자꾸 걱정되네 | -
혹시 치매일까 봐 | 겁이 나고 | - | 겁이 나는데 | 겁이 나/무서워 | -
밤에 바깥에서 소리가 나면 | 무섭고 | 무서워서 | 무서운데 | 무서워/겁이 나 | -
마음이 | 불안하고 | 불안해서 | 불안한데 | 불안해/불안하네 | 통증,외로움,피로
아들이 연락이 안 돼서 | 걱정이 되고 | - | 걱정이 되는데 | 걱정돼 죽겠어/애가 타 | -
가스 불을 끄고 나왔는지 | 자꾸 신경 쓰이고 | 자꾸 신경 쓰여서 | 자꾸 신경 쓰이는데 | 자꾸 신경 쓰여/찜찜해 | -
내가 쓰러지면 어쩌나 | 겁이 나고 | 겁이 나서 | 겁이 나는데 | 겁이 나/걱정이야 | -
수술 날짜가 다가오니 | 떨리고 | 떨려서 | 떨리는데 | 떨려/마음이 떨리네 | -
돈이 떨어질까 봐 | 걱정되고 | 걱정돼서 | 걱정되는데 | 걱정돼/조마조마해 | -
요즘 깜빡깜빡해서 | 불안하고 | - | 불안한데 | 불안해/겁나 | -
손주가 밤늦게 안 들어와서 | 애가 타고 | - | 애가 타는데 | 애가 타/마음이 안 놓여 | -
자꾸 나쁜 일이 | 생길 것 같고 | 생길 것 같아서 | 생길 것 같은데 | 생길 것만 같아 | 외로움
혼자 병원 가는 게 | 겁나고 | 겁나서 | 겁나는데 | 겁나/막막해 | -
큰 병일까 봐 | 겁이 나고 | 겁이 나서 | 겁이 나는데 | 겁이 나/걱정돼 | 통증
혈압이 또 오를까 봐 | 마음이 안 놓이고 | - | 마음이 안 놓이는데 | 마음이 안 놓여/걱정이야 | -
뉴스 보니까 | 세상이 무섭고 | 세상이 무서워서 | 세상이 무서운데 | 세상이 무서워/겁나네 | -
요양원에 보내질까 봐 | 걱정되고 | 걱정돼서 | 걱정되는데 | 걱정돼/겁이 나 | -
이 약을 먹어도 되는지 | 불안하고 | 불안해서 | 불안한데 | 불안해/겁나네 | -
보이스피싱 당할까 봐 | 전화 받기가 무섭고 | - | 전화 받기가 무서운데 | 전화 받기가 무서워 | -
내일 일을 생각하면 | 막막하고 | 막막해서 | 막막한데 | 막막해/앞이 캄캄해 | 외로움,통증
넘어질까 봐 | 밖에 나가기가 겁나고 | - | 밖에 나가기가 겁나는데 | 밖에 나가기가 겁나 | 통증
자식들한테 짐이 될까 봐 | 걱정이 앞서고 | 걱정이 앞서서 | 걱정이 앞서는데 | 걱정이 앞서/그게 걱정이야 | 통증
마음이 | 초조하고 | 초조해서 | 초조한데 | 초조해/초조하네 | 피로
보일러가 또 고장 날까 봐 | 조마조마하고 | - | 조마조마한데 | 조마조마해 | -
문을 잠갔는지 | 자꾸 걱정되고 | - | 자꾸 걱정되는데 | 자꾸 걱정돼/헷갈려서 불안해 | -
""",
    "외로움": """
하루 종일 말할 사람이 | 없고 | 없어서 | 없는데 | 없어/아무도 없네 | -
혼자 밥 먹는 게 | 쓸쓸하고 | 쓸쓸해서 | 쓸쓸한데 | 쓸쓸해/적적해 | -
자식들이 | 통 연락이 없고 | 통 연락이 없어서 | 통 연락이 없는데 | 통 연락이 없어/전화 한 통 없네 | -
집이 | 텅 빈 것 같고 | 텅 빈 것 같아서 | 텅 빈 것 같은데 | 텅 빈 것 같아/너무 조용해 | -
영감 가고 나서 | 혼자 지내고 | 혼자라서 | 혼자 지내는데 | 늘 혼자야/혼자 지내 | -
찾아오는 사람이 | 하나도 없고 | 하나도 없어서 | 하나도 없는데 | 하나도 없어/아무도 없네 | -
요즘 너무 | 적적하고 | 적적해서 | 적적한데 | 적적해/적적하네 | -
말동무가 | 있었으면 좋겠고 | 없어서 | 없는데 | 있었으면 좋겠어/필요해 | -
명절인데도 | 아무도 안 오고 | 아무도 안 와서 | 아무도 안 오는데 | 아무도 안 와/아무도 안 오네 | -
친구들이 다 떠나서 | 외롭고 | - | 외로운데 | 외로워/나 혼자 남았어 | -
티비라도 켜 놔야 | 덜 적적하고 | - | 덜 적적한데 | 덜 적적해 | -
밤이 되면 | 더 외롭고 | 더 외로워서 | 더 외로운데 | 더 외로워/너무 외롭네 | -
아무도 나를 | 찾지 않고 | 찾지 않아서 | 찾지 않는데 | 안 찾아/찾지를 않아 | -
자식들이 | 보고 싶고 | 보고 싶어서 | 보고 싶은데 | 보고 싶어/너무 보고 싶네 | -
경로당에 가도 | 어울릴 사람이 없고 | 어울릴 사람이 없어서 | 어울릴 사람이 없는데 | 어울릴 사람이 없어 | -
세상에 | 나 혼자인 것 같고 | 나 혼자인 것 같아서 | 나 혼자인 것 같은데 | 나 혼자인 것 같아 | -
요즘 혼잣말만 | 늘고 | 늘어서 | 느는데 | 늘어/자꾸 늘어 | -
이웃이 다 이사 가서 | 쓸쓸하고 | - | 쓸쓸한데 | 쓸쓸해/허전해 | -
전화가 | 하루 종일 안 울리고 | 하루 종일 안 울려서 | 하루 종일 안 울리는데 | 하루 종일 안 울려 | -
누가 옆에 | 있어 줬으면 좋겠고 | 없어서 | 없는데 | 있어 줬으면 좋겠어 | -
빈집에 혼자 있으니 | 허전하고 | 허전해서 | 허전한데 | 허전해/휑하네 | -
오늘 아무하고도 | 얘기를 못 하고 | 얘기를 못 해서 | 얘기를 못 했는데 | 얘기를 못 했어/말을 못 했어 | -
주말에도 | 찾아오는 자식이 없고 | 찾아오는 자식이 없어서 | 찾아오는 자식이 없는데 | 찾아오는 자식이 없어 | -
꼭 | 외톨이가 된 것 같고 | 외톨이가 된 것 같아서 | 외톨이가 된 것 같은데 | 외톨이가 된 것 같아 | -
혼자 사는 게 | 너무 외롭고 | 너무 외로워서 | 너무 외로운데 | 너무 외로워/외롭네 | -
""",
    "기쁨": """
손주가 놀러 와서 | 너무 좋고 | - | 너무 좋은데 | 너무 좋아/신이 나 | -
오늘은 기분이 | 좋고 | 좋아서 | 좋은데 | 좋아/참 좋네 | -
텃밭에 고추가 열려서 | 신나고 | - | 신나는데 | 신나/기분이 좋아 | -
오랜만에 친구를 만나서 | 즐겁고 | - | 즐거웠는데 | 즐거웠어/반가웠어 | -
딸이 임신했다니 | 너무 기쁘고 | - | 너무 기쁜데 | 너무 기뻐/경사 났어 | -
노래교실에서 칭찬을 받아서 | 뿌듯하고 | - | 뿌듯한데 | 뿌듯해/으쓱하네 | -
날씨가 좋아서 | 기분이 상쾌하고 | - | 기분이 상쾌한데 | 기분이 상쾌해 | -
손주가 대학에 붙어서 | 날아갈 것 같고 | - | 날아갈 것 같은데 | 날아갈 것 같아/너무 기뻐 | -
꽃이 활짝 펴서 | 보기만 해도 좋고 | - | 보기만 해도 좋은데 | 보기만 해도 좋아 | -
아들이 승진했다고 해서 | 기쁘고 | - | 기쁜데 | 기뻐/춤이라도 추고 싶어 | -
괜히 | 웃음이 나고 | 웃음이 나서 | 웃음이 나는데 | 웃음이 나/싱글벙글해 | -
마음이 | 들뜨고 | 들떠서 | 들뜨는데 | 들떠/설레 | -
증손주 사진을 보니 | 입이 귀에 걸리고 | - | 입이 귀에 걸리는데 | 입이 귀에 걸렸어 | -
복지관 나들이가 | 재밌었고 | 재밌어서 | 재밌었는데 | 재밌었어/참 즐거웠어 | -
동창회에서 옛 친구들을 봐서 | 반갑고 | - | 반가웠는데 | 반가웠어/너무 좋았어 | -
경로당 화투판에서 이겨서 | 신이 나고 | - | 신이 나는데 | 신이 나/기분 최고야 | -
딸이랑 통화하니 | 기분이 좋고 | 기분이 좋아서 | 기분이 좋은데 | 기분이 좋아 | -
새 옷을 선물 받아서 | 설레고 | - | 설레는데 | 설레/마음이 설레네 | -
봄이 오니 | 마음이 환해지고 | 마음이 환해져서 | 마음이 환해지는데 | 마음이 환해져/기분이 좋아 | -
오늘 밥이 맛있어서 | 행복하고 | - | 행복한데 | 행복해/행복하네 | -
요즘 사는 게 | 즐겁고 | 즐거워서 | 즐거운데 | 즐거워/재미있어 | -
손녀가 재롱을 부려서 | 웃음이 절로 나고 | - | 웃음이 절로 나는데 | 웃음이 절로 나 | -
오랜만에 가족사진을 찍어서 | 흐뭇하고 | - | 흐뭇한데 | 흐뭇해/흐뭇하네 | -
내가 심은 꽃이 피어서 | 기쁘고 | - | 기쁜데 | 기뻐/좋아 죽겠어 | -
""",
    "감사": """
손주가 전화해줘서 | 고맙고 | - | 고마운데 | 고마워/정말 고맙네 | -
딸이 반찬을 챙겨줘서 | 고맙고 | - | 고마운데 | 고마워/늘 고마워 | -
요양보호사 선생님이 잘 해줘서 | 감사하고 | - | 감사한데 | 감사해요/정말 감사해 | -
이웃이 장을 대신 봐줘서 | 고맙고 | - | 고마운데 | 고마워/신세를 졌어 | -
며느리가 병원에 같이 가줘서 | 고맙고 | - | 고마운데 | 고마워/참 고맙지 | -
네가 말동무해줘서 | 고맙고 | - | 고마운데 | 고마워/고맙다 | -
복지관에서 도시락을 갖다줘서 | 감사하고 | - | 감사한데 | 감사하지/감사해 | -
아들이 용돈을 보내줘서 | 고맙고 | - | 고마운데 | 고마워/고맙구나 | -
이렇게 챙겨 주는 사람이 있어서 | 감사하고 | - | 감사한데 | 감사해/감사할 따름이야 | -
의사 선생님이 자세히 설명해줘서 | 고마웠고 | - | 고마웠는데 | 고마웠어/감사했어 | -
사위가 보일러를 고쳐줘서 | 고맙고 | - | 고마운데 | 고마워/고맙네 | -
매일 안부를 물어봐줘서 | 고맙고 | - | 고마운데 | 고마워/참 고마워 | -
손녀가 편지를 써줘서 | 고맙고 | - | 고마운데 | 고마워/고맙더라 | -
동생이 약을 사다줘서 | 고맙고 | - | 고마운데 | 고마워/고맙지 | -
이만큼 건강한 것도 | 감사하고 | - | 감사한데 | 감사하지/감사한 일이야 | -
경비 아저씨가 짐을 들어줘서 | 고마웠고 | - | 고마웠는데 | 고마웠어/고맙더라 | -
자식들이 다 잘 커줘서 | 감사하고 | - | 감사한데 | 감사하지/감사해 | -
친구가 죽을 쒀 와서 | 고맙고 | - | 고마운데 | 고마워/얼마나 고마운지 | -
하루하루 | 감사하고 | - | 감사한데 | 감사해/감사하며 살아 | -
간호사가 친절하게 해줘서 | 고마웠고 | - | 고마웠는데 | 고마웠어 | -
네 덕분에 약을 안 잊어서 | 고맙고 | - | 고마운데 | 고마워/네 덕이야 | -
봉사자들이 집을 청소해줘서 | 감사하고 | - | 감사한데 | 감사해/감사하네 | -
옆집 새댁이 떡을 나눠줘서 | 고맙고 | - | 고마운데 | 고마워/고맙더라 | -
상담 선생님이 얘기를 들어줘서 | 고맙고 | - | 고마운데 | 고마워요/감사해요 | -
택시 기사님이 집 앞까지 데려다줘서 | 고마웠고 | - | 고마웠는데 | 고마웠어 | -
""",
}

# Written one by one, as said, with their labels (a few with STT flaws: missing or wrong spaces).
HAND_WRITTEN = [
    ("아이고 허리야 오늘따라 왜 이렇게 쑤시나", "통증"),
    ("어젯밤에 또 세 시에 깨서 그대로 날 샜어", "피로"),
    ("우리 손주가 반장 됐대 너무 기분 좋다", "기쁨"),
    ("요즘은 아무도 날 찾지 않는구나 싶어", "외로움"),
    ("이 기계는 왜 내 말을 맨날 못 알아듣는 거야 성질나게", "분노"),
    ("내일 대장 내시경인데 벌써부터 떨려", "불안"),
    ("늘 와줘서 고마워요 선생님 덕분이에요", "감사"),
    ("그냥 아무 이유 없이 눈물이 나네", "슬픔"),
    ("무릎이 쑤시는 거 보니 비가 오려나 봐", "통증"),
    ("잠이 안와서 밤새 천장만 봤어", "피로"),
    ("친구 장례식 다녀오니 눈물만 나", "슬픔"),
    ("아들네가 온다니까 벌써 신나", "기쁨"),
    ("밥 챙겨주는 도우미 선생님한테 늘 감사하지", "감사"),
    ("문 잠갔는지 몇 번을 확인해도 불안해", "불안"),
    ("하루가 너무 길어 혼자 있으니까", "외로움"),
    ("허리가 쑤셔서 잠을 한숨도 못 잤어", "통증,피로"),
    ("손주가 전화해줘서 너무 고맙고 기뻤어", "감사,기쁨"),
    ("혼자 밥 먹는 게 서럽고 화가 나", "외로움,슬픔,분노"),
    ("딸이 보내준 안마기 덕에 어깨가 덜 아파 고맙다", "통증,감사"),
    ("영감이 보고 싶어서 울다 보면 새벽이야 잠을 못 자", "슬픔,외로움,피로"),
    ("경로당 친구들이 생일 챙겨줘서 얼마나 좋았는지 몰라 다들 고마워", "기쁨,감사"),
    ("관절약을 먹어도 무릎이 아프니 속상하고 짜증 나", "통증,슬픔,분노"),
    ("자식들은 바쁘다고 안 오고 나 혼자 아프면 어쩌나 걱정돼", "외로움,불안"),
    ("보일러 고장 난 걸 관리실이 안 고쳐줘서 화나 추워서 밤새 못 잤어", "분노,피로"),
    ("아들 수술 잘 끝났대 얼마나 마음 졸였는지 이제야 기쁘네", "불안,기쁨"),
    ("선생님 이렇게 얘기 들어주시니 고맙고 덜 외로워요", "감사,외로움"),
    ("밤에 자꾸 다리에 쥐가 나서 깨 잠을 설쳐", "통증,피로"),
    ("며느리가 내 험담하는 걸 들어서 분하고 서러워", "분노,슬픔"),
    ("혼자 병원 가는 길이 무섭고 쓸쓸해", "불안,외로움"),
    ("오늘 처음으로 혼자 계단을 올랐어 무릎은 좀 아파도 기뻐", "기쁨,통증"),
    ("손녀가 그려준 그림 보니 웃음 나고 고맙고 보고 싶다", "기쁨,감사,외로움"),
    ("요즘 깜빡하는 게 늘어서 겁나고 밤에 잠도 안 와", "불안,피로"),
    ("다들 날 귀찮아하는 것 같아 서글프고 외로워", "슬픔,외로움"),
    ("약 타러 가서 한 시간을 기다렸어 다리 아프고 성질 나", "통증,분노"),
    ("오늘 복지관 선생님들 덕분에 너무 즐거웠어 감사해요", "기쁨,감사"),
    ("아픈 데가 한두 군데가 아니라 잠도 못 자고 겁이 나", "통증,피로,불안"),
    ("딸래미가 김치를 담가 왔더라 고맙긴 한데 금방 가버려서 허전해", "감사,외로움"),
    ("큰아들이랑 또 싸웠어 속상하고 열불이 나서 잠이 안 와", "슬픔,분노,피로"),
    ("기도하면 마음이 편해 그래도 살아 있으니 감사하지", "감사"),
    ("이사 간 옆집 할머니가 그리워 말벗이 없으니 적적하네", "외로움"),
    ("어깨가빠질것 같이 아파서 밤새 끙끙 앓았어", "통증,피로"),
    ("손주 결혼 날짜 잡혔대 기쁜데 그때까지 걸을 수 있을지 걱정이야", "기쁨,불안"),
    ("아무도 없는 집에 들어오면 서럽고 무서워", "외로움,슬픔,불안"),
    ("간병인 선생님이 밤새 옆에 있어줘서 고맙고 덜 무서웠어", "감사,불안"),
    ("눈이 침침하고 머리도 아파서 짜증이 나", "통증,분노"),
    ("친구들 만나서 수다 떨었더니 기분은 좋은데 피곤하다", "기쁨,피로"),
    ("자다가 깨면 옆에 아무도 없어 그게 제일 서러워", "외로움,슬픔"),
    ("손주가 용돈 모아서 보청기 사줬어 고맙고 기뻐서 눈물이 났어", "감사,기쁨"),
    ("밤새 기침하느라 못 자고 목이 따끔따끔 아파", "피로,통증"),
    ("사람들이 나를 무시하는 것 같아 화가 나고 외로워", "분노,외로움"),
    ("걱정이 많아서 그런지 속이 쓰리고 잠도 안 와", "불안,통증,피로"),
    ("내 생일인데 서운하더라 아무도 안 챙기니 괘씸하고", "슬픔,분노"),
    ("동생이 멀리서 와줘서 얼마나 반갑고 고마웠는지", "기쁨,감사"),
    ("병원비가 걱정되고 허리는 계속 아프고 잠도 안 와", "불안,통증,피로"),
    ("요즘은 아침마다 새소리 들으면 기분이 좋아", "기쁨"),
    ("같이 일하던 동무들 다 가고 나만 남아 쓸쓸하고 슬퍼", "외로움,슬픔"),
    ("무릎 수술 잘 됐다니 너무 기쁘고 의사 선생님께 감사해요", "기쁨,감사"),
    ("혼자서는 목욕하기도 겁나고 몸도 천근만근이야", "불안,피로"),
    ("아들이 나한테 소리를 질러서 분하고 서러워서 한숨도 못 잤어", "분노,슬픔,피로"),
    ("오늘 경로당에서 노래자랑 일등 했어 너무 신나", "기쁨"),
    ("고관절이 시려서 밤마다 깨 그래도 딸이 찜질팩 사다줘서 고마워", "통증,피로,감사"),
    ("할멈 먼저 보내고 나니 집이 너무 조용해 눈물이 나", "외로움,슬픔"),
    ("넘어질까 봐 무서워서 산책도 못 나가겠어", "불안"),
    ("오랜만에 푹 잤더니 개운하고 기분 좋다", "기쁨"),
    ("선생님한테 털어놓고 나니 속이 좀 풀려요 감사합니다", "감사"),
    ("손주가보고 싶어서 전화했는데 안 받네 적적해", "외로움"),
    ("며느리가 대 놓고 무시하니 분하고 억울해", "분노"),
]

# The hand-written rows above that carry STT spacing errors on purpose.
HAND_STT = {"잠이 안와서 밤새 천장만 봤어", "어깨가빠질것 같이 아파서 밤새 끙끙 앓았어"}
HAND_STT |= {"손주가보고 싶어서 전화했는데 안 받네 적적해", "며느리가 대 놓고 무시하니 분하고 억울해"}

FILLERS = ["아이고", "에휴", "어", "음", "있잖아", "저기", "아휴", "그게", "선생님"]
SIGHS = {"아이고", "에휴", "아휴"}
# Final syllables that take a polite 요 (쑤셔요, 잤네요, 감사하지요); others (좋다, 혼자야) do not.
POLITE_OK = set("어아해워와네져려파퍼나뻐레떠쳐셔봐돼지여")
# Adverbs a sentence should not say twice.
ADVERBS = ["자꾸", "너무", "괜히", "요즘", "밤새", "하루 종일", "혼자", "마음이", "기분이", "몸이", "선생님"]


def has_ss(syllable: str) -> bool:
    """Whether a Hangul syllable ends in ㅆ (the past tense: 잤, 했, 웠)."""
    code = ord(syllable) - 0xAC00
    return 0 <= code < 11172 and code % 28 == 20


@dataclass
class Fragment:
    label: str
    prefix: str
    go: str
    seo: str
    neunde: str
    finals: list[str]
    after: set[str]

    def _join(self, form: str) -> str:
        return f"{self.prefix} {form}".strip()

    def form(self, kind: str, rng: random.Random) -> str:
        if kind == "go":
            return self._join(self.go)
        if kind == "jiman":  # 쑤시고 -> 쑤시지만; past 는데-forms keep their tense: 못 잤는데 -> 못 잤지만
            past = self.neunde.endswith("는데") and len(self.neunde) > 2 and has_ss(self.neunde[-3])
            return self._join(self.neunde[:-2] + "지만" if past else self.go[:-1] + "지만")
        if kind == "seo":
            return self._join(self.seo)
        if kind == "neunde":
            return self._join(self.neunde)
        return self._join(rng.choice(self.finals))

    def follows(self, cause_label: str) -> bool:
        return cause_label in self.after


def parse_fragments() -> dict[str, list[Fragment]]:
    out: dict[str, list[Fragment]] = {}
    for label, block in FRAGMENTS.items():
        frags = []
        for line in block.strip().splitlines():
            prefix, go, seo, neunde, finals, after = (p.strip() for p in line.split("|"))
            assert go.endswith("고"), line
            frags.append(
                Fragment(
                    label,
                    prefix,
                    go,
                    "" if seo == "-" else seo,
                    neunde,
                    finals.split("/"),
                    set() if after == "-" else set(after.split(",")),
                )
            )
        out[label] = frags
    return out


def char_ngrams(text: str, n: int = 3) -> frozenset[str]:
    s = text.replace(" ", "")
    return frozenset(s[i : i + n] for i in range(max(1, len(s) - n + 1)))


class Composer:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.frags = parse_fragments()
        self.used: Counter[int] = Counter()

    def pick(self, label: str, need=None, exclude=()) -> Fragment | None:
        """A fragment of `label`, least-used first (weight 1/(1+uses)^2), passing `need`."""
        pool = [f for f in self.frags[label] if (need is None or need(f)) and f not in exclude]
        if not pool:
            return None
        weights = [1.0 / (1 + self.used[id(f)]) ** 2 for f in pool]
        return self.rng.choices(pool, weights)[0]

    def causal(self, a: str, b: str, exclude=()):
        """A cause fragment of label a and an effect fragment of label b that may follow it, or None."""
        if not any(f.follows(a) for f in self.frags[b]):
            return None
        cause = self.pick(a, lambda f: bool(f.seo), exclude)
        effect = self.pick(b, lambda f: f.follows(a), exclude)
        return (cause, effect) if cause and effect else None

    def can_cause(self, a: str, b: str) -> bool:
        return any(f.seo for f in self.frags[a]) and any(f.follows(a) for f in self.frags[b])

    def sep(self, a: str, b: str) -> str:
        """Between two whole sentences: mostly nothing (speech), sometimes a spoken connector."""
        if a not in POSITIVE and b in POSITIVE:
            options = [" 그래도 ", " 그래도 ", " 근데 "]
        elif a in POSITIVE and b not in POSITIVE:
            options = [" 근데 "]
        else:
            options = [" "] * 5 + [" 그리고 ", " 또 "]
        return self.rng.choice(options)

    def links(self, order: list[str]) -> list[str]:
        """How each clause joins the next: 고, 서 (cause), 는데, 지만, or a whole sentence (final)."""
        links: list[str] = []
        for x, y in zip(order, order[1:]):
            if (x in POSITIVE) != (y in POSITIVE):  # a turn in feeling: 지만, 는데, 근데, 그래도
                options = ["jiman"] * 3 + ["neunde"] * 3 + ["final"] * 2
            else:
                options = ["go"] * 4 + ["neunde"] * 2 + ["final"] * 2
                if self.can_cause(x, y) and (not links or links[-1] != "seo"):
                    options += ["seo"] * 6
            if links and links[-1] in ("neunde", "final"):  # no 는데 ... 는데, no three sentences
                options = [o for o in options if o != links[-1]]
            links.append(self.rng.choice(options))
        return links

    def compose(self, labels: list[str]) -> tuple[str, list[Fragment]] | None:
        rng = self.rng
        if len(labels) == 1:
            a = labels[0]
            f1 = self.pick(a)
            if rng.random() < 0.35:
                return self.decorate(f1.form("final", rng), [a], force_filler=True), [f1]
            f2 = self.pick(a, exclude=(f1,))
            kind = "go" if a in POSITIVE else rng.choice(["go", "go", "neunde"])
            return f"{f1.form(kind, rng)} {f2.form('final', rng)}", [f1, f2]
        # Clauses of the same colour of feeling stay together; the turn between them gets a connector.
        neg = [lab for lab in labels if lab not in POSITIVE]
        pos = [lab for lab in labels if lab in POSITIVE]
        rng.shuffle(neg)
        rng.shuffle(pos)
        order = neg + pos if rng.random() < 0.6 else pos + neg
        links = self.links(order)
        frags = []
        for i, lab in enumerate(order):
            cause = i < len(links) and links[i] == "seo"
            after = order[i - 1] if i and links[i - 1] == "seo" else None
            f = self.pick(lab, lambda f: (not cause or bool(f.seo)) and (after is None or f.follows(after)))
            if f is None:
                return None
            frags.append(f)
        text = ""
        for i, (f, lab) in enumerate(zip(frags, order)):
            if i == len(frags) - 1:
                text += f.form("final", rng)
            elif links[i] == "final":
                text += f.form("final", rng) + self.sep(lab, order[i + 1])
            else:
                text += f.form(links[i], rng) + " "
        return text, frags

    def decorate(self, text: str, labels: list[str], force_filler: bool = False) -> str:
        """Spoken touches: a filler in front, a polite 요 at the end, rarely a full stop."""
        rng = self.rng
        filler = ""
        if force_filler or rng.random() < 0.18:
            filler = rng.choice(FILLERS)
            sigh = filler in SIGHS and all(lab in POSITIVE for lab in labels)  # no 에휴 before good news
            if filler in text or sigh:
                filler = ""
        polite = filler == "선생님" or rng.random() < 0.12
        if polite and text[-1] in POLITE_OK and not text.endswith("요"):
            text += "요"
        if filler:
            text = f"{filler} {text}"
        if rng.random() < 0.04:
            text += "."
        return text


def stt_flaw(text: str, rng: random.Random) -> str:
    """One or two STT spacing errors: words run together, or a space inside a word."""
    for _ in range(rng.choice([1, 1, 2])):
        words = text.split(" ")
        if rng.random() < 0.6 and len(words) > 2:
            i = rng.randrange(len(words) - 1)
            words[i : i + 2] = [words[i] + words[i + 1]]
        else:
            long = [i for i, w in enumerate(words) if len(w) >= 3]
            if not long:
                continue
            i = rng.choice(long)
            cut = rng.randrange(1, len(words[i]) - 1)
            words[i] = words[i][:cut] + " " + words[i][cut:]
        text = " ".join(words)
    return text


def label_sets(rng: random.Random) -> list[list[str]]:
    """Every pair 9-11 times, every triple 2-4 times, every label alone 4 times; shuffled."""
    sets: list[list[str]] = []
    for pair in combinations(LABELS, 2):
        sets += [list(pair)] * rng.randint(9, 11)
    for triple in combinations(LABELS, 3):
        sets += [list(triple)] * rng.randint(2, 4)
    for label in LABELS:
        sets += [[label]] * 4
    rng.shuffle(sets)
    return sets


def sort_labels(labels) -> str:
    return ",".join(sorted(set(labels), key=LABELS.index))


Row = tuple[str, str, str]  # text, labels, origin ("hand" or "generated", "+stt" with spacing errors)


def build(seed: int = SEED) -> list[Row]:
    rng = random.Random(seed)
    composer = Composer(rng)
    rows: list[Row] = []
    seen: set[str] = set()
    grams: list[frozenset[str]] = []

    def accept(text: str, near: float) -> bool:
        key = text.replace(" ", "").rstrip(".")
        if key in seen:
            return False
        g = char_ngrams(text)
        if any(len(g & h) / len(g | h) >= near for h in grams):
            return False
        seen.add(key)
        grams.append(g)
        return True

    for text, labels in HAND_WRITTEN:
        assert accept(text, 1.01), f"duplicate hand-written row: {text}"
        rows.append((text, sort_labels(labels.split(",")), "hand+stt" if text in HAND_STT else "hand"))
    for labels in label_sets(rng):
        for attempt in range(300):
            composed = composer.compose(labels)
            if composed is None:
                continue
            text, used = composed
            words = [w for w in text.split() if len(w) >= 2]
            if len(set(words)) < len(words) or any(text.count(adv) > 1 for adv in ADVERBS):
                continue
            if not 10 <= len(text) <= (46 if attempt < 100 else 52):
                continue
            text = composer.decorate(text, labels) if len(labels) > 1 else text
            origin = "generated"
            if rng.random() < 0.14:
                text, origin = stt_flaw(text, rng), "generated+stt"
            if accept(text, 0.6):
                composer.used.update(id(f) for f in used)
                rows.append((text, sort_labels(labels), origin))
                break
    # Hand-written rows spread through the file rather than all at the top.
    head, tail = rows[: len(HAND_WRITTEN)], rows[len(HAND_WRITTEN) :]
    for row in head:
        tail.insert(rng.randrange(len(tail) + 1), row)
    return tail


def write(rows: list[Row], path: Path = OUTPUT) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "text", "labels"])
        for i, (text, labels, _) in enumerate(rows, 1):
            writer.writerow([f"{ID_PREFIX}-{i:04d}", text, labels])


def near_duplicates(texts: list[str], threshold: float) -> int:
    """Pairs whose character 3-gram Jaccard similarity (spaces removed) is >= threshold."""
    grams = [char_ngrams(t) for t in texts]
    return sum(len(a & b) / len(a | b) >= threshold for a, b in combinations(grams, 2))


def stats(rows: list[Row]) -> None:
    sets = [labels.split(",") for _, labels, _ in rows]
    per_label = Counter(lab for labs in sets for lab in labs)
    per_row = Counter(len(labs) for labs in sets)
    pairs = Counter(pair for labs in sets for pair in combinations(labs, 2))
    lengths = sorted(len(t) for t, _, _ in rows)
    texts = [t for t, _, _ in rows]
    origins = Counter(o for _, _, o in rows)
    print(f"rows: {len(rows)}")
    print("per label:", {lab: per_label[lab] for lab in LABELS})
    print("labels per row:", dict(sorted(per_row.items())))
    print("distinct label sets:", len({labels for _, labels, _ in rows}))
    low, high = min(pairs.values()), max(pairs.values())
    print(f"label pairs co-occurring: {len(pairs)} of 28 (rows per pair {low}-{high})")
    mean, median = sum(lengths) / len(lengths), lengths[len(lengths) // 2]
    print(f"length: mean {mean:.1f}, median {median}, min {lengths[0]}, max {lengths[-1]}")
    print(f"12-45 characters: {sum(12 <= n <= 45 for n in lengths) / len(lengths):.0%}")
    print("origin:", dict(sorted(origins.items())))
    print(f"with STT spacing errors: {sum('stt' in o for o in origins.elements())}")
    print(f"exact duplicates (spaces removed): {len(texts) - len({t.replace(' ', '') for t in texts})}")
    for threshold in (0.7, 0.5):
        print(f"near-duplicate pairs >= {threshold}: {near_duplicates(texts, threshold)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--stats", action="store_true", help="print the figures of what was written")
    args = parser.parse_args()
    rows = build(args.seed)
    write(rows, args.output)
    print(f"wrote {len(rows)} rows to {args.output}")
    if args.stats:
        stats(rows)


if __name__ == "__main__":
    main()
