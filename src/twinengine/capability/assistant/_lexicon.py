# ruff: noqa: E501
"""A small multilingual glossary: visitor words in other languages -> English catalog terms.

The catalog is mostly English and the embedding model is English-first, so non-English briefs
are retrieved through these glosses (plus the original words, which match the Japanese,
Chinese and Korean prompts the catalog does hold). Keys are lower-case; CJK keys match as
substrings, Latin keys as whole words. (A data table: one term a line, however long.)
"""

from __future__ import annotations

# english term -> words in ja, zh, ko, es, fr, de, pt, it
_TERMS: dict[str, tuple[str, ...]] = {
    # deliverables
    "poster": ("ポスター", "海报", "海報", "포스터", "póster", "cartel", "affiche", "plakat", "pôster",
               "cartaz", "manifesto"),
    "flyer": ("チラシ", "传单", "전단지", "folleto", "volante", "prospectus", "flugblatt", "panfleto"),
    "logo": ("ロゴ", "标志", "标识", "로고", "logotipo", "logotype"),
    "product photo": ("商品写真", "製品写真", "产品图", "产品照片", "商品图", "제품 사진", "상품 사진",
                      "foto de producto", "photo de produit", "produktfoto", "foto do produto"),
    "product": ("商品", "製品", "产品", "제품", "상품", "producto", "produit", "produkt", "produto"),
    "packaging": ("パッケージ", "包装", "패키지", "empaque", "embalaje", "emballage", "verpackung",
                  "embalagem"),
    "infographic": ("インフォグラフィック", "図解", "信息图", "인포그래픽", "infografía", "infographie",
                    "infografik", "infográfico"),
    "sticker sheet": ("スタンプセット", "ステッカーセット", "贴纸套装", "表情包套装", "스티커 세트",
                      "set de pegatinas", "planche d'autocollants"),
    "sticker": ("ステッカー", "スタンプ", "贴纸", "表情包", "스티커", "pegatina", "autocollant",
                "aufkleber", "adesivo"),
    "avatar": ("アイコン", "アバター", "头像", "아바타", "프로필 사진", "avatar", "foto de perfil"),
    "thumbnail": ("サムネイル", "サムネ", "封面", "缩略图", "썸네일", "miniatura", "vignette"),
    "book cover": ("表紙", "书封", "책 표지", "portada de libro", "couverture de livre", "buchcover"),
    "magazine cover": ("雑誌の表紙", "杂志封面", "잡지 표지", "portada de revista"),
    "comic": ("漫画", "マンガ", "连环画", "만화", "웹툰", "cómic", "historieta", "bande dessinée",
              "quadrinhos", "fumetto"),
    "storyboard": ("絵コンテ", "分镜", "스토리보드", "guion gráfico"),
    "map": ("地図", "地图", "지도", "mapa", "carte", "karte"),
    "menu": ("メニュー", "菜单", "메뉴", "menú", "speisekarte", "cardápio"),
    "business card": ("名刺", "名片", "명함", "tarjeta de visita", "carte de visite", "visitenkarte"),
    "greeting card": ("グリーティングカード", "贺卡", "카드", "tarjeta", "carte de voeux", "grußkarte"),
    "invitation": ("招待状", "请柬", "邀请函", "초대장", "invitación", "einladung", "convite"),
    "wallpaper": ("壁紙", "壁纸", "배경화면", "fondo de pantalla", "fond d'écran", "hintergrundbild"),
    "portrait": ("ポートレート", "肖像", "人像", "초상화", "인물 사진", "retrato", "portrait", "porträt"),
    "headshot": ("証明写真", "证件照", "증명사진", "foto de carnet"),
    "banner": ("バナー", "横幅", "배너", "pancarta"),
    "t-shirt design": ("tシャツ", "t恤", "티셔츠", "camiseta", "t-shirt"),
    "character design": ("キャラクターデザイン", "角色设计", "캐릭터 디자인", "diseño de personaje"),
    "ui": ("アプリ画面", "ウェブサイト", "网页", "界面", "웹사이트", "앱 화면", "sitio web", "site web",
           "página web"),
    "slide": ("スライド", "幻灯片", "슬라이드", "diapositiva", "présentation"),
    "video": ("動画", "视频", "影片", "영상", "동영상", "vídeo", "vidéo", "clip"),
    "advertisement": ("広告", "广告", "광고", "anuncio", "publicidad", "publicité", "werbung",
                      "anúncio"),
    "photo": ("写真", "照片", "사진", "foto", "fotografía", "photo"),
    "illustration": ("イラスト", "插画", "插图", "일러스트", "ilustración", "illustration", "ilustração"),
    # styles
    "watercolor": ("水彩画", "水彩", "수채화", "acuarela", "aquarelle", "aquarell", "aquarela", "acquerello"),
    "oil painting": ("油絵", "油画", "유화", "óleo", "pintura al óleo", "peinture à l'huile", "ölgemälde"),
    "anime": ("アニメ風", "アニメ", "动漫", "二次元", "애니메이션", "애니", "anime"),
    "pixel art": ("ドット絵", "像素", "픽셀 아트", "arte de píxeles", "pixel art"),
    "3d render": ("3dcg", "三维渲染", "3d 렌더", "render 3d", "rendu 3d"),
    "ink wash": ("水墨", "墨絵", "国画", "수묵화"),
    "ukiyo-e": ("浮世絵", "浮世绘", "우키요에"),
    "pencil sketch": ("鉛筆画", "素描", "스케치", "boceto", "croquis", "bleistiftzeichnung", "esboço"),
    "line art": ("線画", "线稿", "선화"),
    "flat vector": ("フラットデザイン", "扁平", "플랫 디자인", "diseño plano"),
    "minimalist": ("ミニマル", "极简", "简约", "미니멀", "minimalista", "minimaliste", "minimalistisch"),
    "isometric": ("アイソメトリック", "等距", "아이소메트릭", "isométrico", "isométrique"),
    "chibi": ("ちびキャラ", "q版", "치비"),
    "claymation": ("粘土", "黏土", "클레이", "plastilina", "pâte à modeler"),
    "paper cut": ("切り絵", "剪纸", "종이 공예", "papel picado"),
    "cyberpunk": ("サイバーパンク", "赛博朋克", "사이버펑크", "ciberpunk"),
    "vintage": ("ヴィンテージ", "レトロ", "复古", "怀旧", "빈티지", "레트로", "vintage", "retro", "rétro"),
    "realistic": ("リアル", "写实", "逼真", "사실적", "realista", "réaliste", "realistisch"),
    "cinematic": ("映画風", "电影感", "시네마틱", "cinematográfico", "cinématographique"),
    "black and white": ("白黒", "黑白", "흑백", "blanco y negro", "noir et blanc", "schwarzweiß"),
    "ghibli": ("ジブリ", "吉卜力", "지브리"),
    # moods
    "cozy": ("居心地の良い", "温かみ", "ほっこり", "温馨", "舒适", "아늑한", "따뜻한", "acogedor", "acogedora",
             "cálido", "cálida", "chaleureux", "chaleureuse", "douillet", "gemütlich", "aconchegante"),
    "cute": ("かわいい", "可愛い", "可爱", "귀여운", "lindo", "linda", "tierno", "mignon", "mignonne",
             "niedlich", "fofo", "fofa"),
    "elegant": ("エレガント", "上品", "优雅", "高级", "우아한", "elegante", "élégant", "elegant"),
    "luxury": ("高級", "奢华", "럭셔리", "lujo", "lujoso", "luxe", "luxus", "luxo"),
    "dark": ("ダーク", "暗黑", "어두운", "oscuro", "sombre", "dunkel", "escuro"),
    "dreamy": ("幻想的", "梦幻", "몽환적", "onírico", "de ensueño", "onirique", "verträumt"),
    "funny": ("面白い", "搞笑", "有趣", "재미있는", "divertido", "drôle", "lustig"),
    "romantic": ("ロマンチック", "浪漫", "로맨틱", "romántico", "romantique", "romantisch"),
    "pastel": ("パステル", "马卡龙", "파스텔", "pastel"),
    "neon": ("ネオン", "霓虹", "네온", "neón", "néon"),
    "spooky": ("不気味", "诡异", "으스스한", "espeluznante", "effrayant", "gruselig"),
    "epic": ("壮大", "史诗", "웅장한", "épico", "épique", "episch"),
    # subjects and settings
    "bakery": ("パン屋", "ベーカリー", "面包店", "烘焙店", "빵집", "베이커리", "panadería", "boulangerie",
               "bäckerei", "padaria", "panetteria"),
    "bread": ("パン", "面包", "빵", "pan", "pain", "brot", "pão"),
    "cake": ("ケーキ", "蛋糕", "케이크", "pastel de", "tarta", "gâteau", "kuchen", "bolo", "torta"),
    "coffee": ("コーヒー", "咖啡", "커피", "café", "kaffee"),
    "cafe": ("カフェ", "咖啡店", "咖啡馆", "카페", "cafetería", "kaffeehaus"),
    "tea": ("お茶", "紅茶", "抹茶", "奶茶", "차", "té", "thé", "tee", "chá"),
    "restaurant": ("レストラン", "餐厅", "饭店", "식당", "레스토랑", "restaurante", "restaurant"),
    "ramen": ("ラーメン", "拉面", "라멘", "라면"),
    "sushi": ("寿司", "스시", "초밥"),
    "food": ("料理", "食べ物", "美食", "食物", "음식", "요리", "comida", "nourriture", "essen", "cuisine"),
    "dessert": ("デザート", "甜品", "甜点", "디저트", "postre", "dessert", "nachtisch", "sobremesa"),
    "cat": ("猫", "ねこ", "ネコ", "猫咪", "고양이", "gato", "gata", "chat", "katze", "gatto"),
    "dog": ("犬", "いぬ", "イヌ", "狗", "小狗", "개", "강아지", "perro", "perrito", "chien", "hund",
            "cachorro", "cane"),
    "bird": ("鳥", "鸟", "새", "pájaro", "ave", "oiseau", "vogel", "pássaro"),
    "flower": ("花", "꽃", "flor", "flores", "fleur", "fleurs", "blume", "blumen"),
    "tree": ("木", "树", "나무", "árbol", "arbre", "baum", "árvore"),
    "forest": ("森", "森林", "숲", "bosque", "forêt", "wald", "floresta"),
    "mountain": ("山", "산", "montaña", "montagne", "berg", "montanha"),
    "sea": ("海", "바다", "mar", "mer", "meer"),
    "beach": ("ビーチ", "海辺", "海滩", "沙滩", "해변", "playa", "plage", "strand", "praia"),
    "city": ("街", "都市", "城市", "도시", "ciudad", "ville", "stadt", "cidade"),
    "street": ("通り", "街道", "거리", "calle", "rue", "straße", "rua"),
    "night": ("夜", "夜景", "밤", "야경", "noche", "nuit", "nacht", "noite"),
    "sunset": ("夕焼け", "夕日", "日落", "夕阳", "노을", "석양", "atardecer", "coucher de soleil",
               "sonnenuntergang", "pôr do sol"),
    "rain": ("雨", "비", "lluvia", "pluie", "regen", "chuva"),
    "girl": ("女の子", "少女", "女孩", "소녀", "chica", "niña", "fille", "mädchen", "menina"),
    "woman": ("女性", "女人", "여성", "여자", "mujer", "femme", "frau", "mulher"),
    "man": ("男性", "男人", "남성", "남자", "hombre", "homme", "mann", "homem"),
    "boy": ("男の子", "少年", "男孩", "소년", "chico", "niño", "garçon", "junge", "menino"),
    "child": ("子供", "子ども", "孩子", "儿童", "아이", "어린이", "niños", "enfant", "kind", "criança"),
    "family": ("家族", "家庭", "가족", "familia", "famille", "familie", "família"),
    "couple": ("カップル", "情侣", "커플", "pareja", "couple", "paar", "casal"),
    "wedding": ("結婚式", "婚礼", "婚纱", "결혼식", "웨딩", "boda", "mariage", "hochzeit", "casamento"),
    "robot": ("ロボット", "机器人", "로봇", "robot", "roboter", "robô"),
    "dragon": ("ドラゴン", "竜", "龙", "드래곤", "용", "dragón", "dragon", "drache", "dragão"),
    "castle": ("城", "城堡", "성", "castillo", "château", "schloss", "castelo"),
    "space": ("宇宙", "太空", "우주", "espacio", "espace", "weltraum", "espaço"),
    "car": ("車", "汽车", "자동차", "coche", "carro", "voiture", "auto"),
    "shop": ("店", "お店", "商店", "店铺", "가게", "상점", "tienda", "boutique", "laden", "loja"),
    "store": ("ストア", "网店", "스토어", "tienda online"),
    "skincare": ("スキンケア", "护肤", "스킨케어", "cuidado de la piel", "soin de la peau"),
    "perfume": ("香水", "향수", "perfume", "parfum"),
    "sneakers": ("スニーカー", "运动鞋", "스니커즈", "zapatillas", "baskets", "turnschuhe", "tênis"),
    "jewelry": ("ジュエリー", "珠宝", "首饰", "주얼리", "joyería", "joyas", "bijoux", "schmuck", "joias"),
    "fashion": ("ファッション", "时尚", "패션", "moda", "mode"),
    "kimono": ("着物", "和服", "기모노"),
    "hanfu": ("汉服", "漢服", "한푸"),
    "hanbok": ("韓服", "韩服", "한복"),
    "samurai": ("侍", "武士", "사무라이", "samurái"),
    "temple": ("寺", "神社", "寺庙", "절", "templo", "temple", "tempel"),
    "festival": ("祭り", "节日", "축제", "fiesta", "festival", "fest"),
    "birthday": ("誕生日", "生日", "생일", "cumpleaños", "anniversaire", "geburtstag", "aniversário"),
    "travel": ("旅行", "旅游", "여행", "viaje", "voyage", "reise", "viagem"),
    "music": ("音楽", "音乐", "음악", "música", "musique", "musik"),
    "concert": ("コンサート", "演唱会", "콘서트", "concierto", "concert", "konzert"),
    "sale": ("セール", "特売", "促销", "打折", "特卖", "세일", "할인", "rebajas", "oferta", "ofertas",
             "venta", "soldes", "promo", "promotion", "ausverkauf", "rabatt", "liquidação", "promoção"),
    "sports": ("スポーツ", "运动", "体育", "스포츠", "deporte", "deportes", "sport", "esporte"),
    "football": ("サッカー", "足球", "축구", "fútbol", "futebol"),
    "game": ("ゲーム", "游戏", "게임", "juego", "jeu", "spiel", "jogo"),
    "education": ("教育", "교육", "educación", "éducation", "bildung", "educação"),
    "school": ("学校", "학교", "escuela", "école", "schule", "escola"),
    "science": ("科学", "과학", "ciencia", "science", "wissenschaft", "ciência"),
    "history": ("歴史", "历史", "역사", "historia", "histoire", "geschichte", "história"),
    "startup": ("スタートアップ", "创业公司", "스타트업", "empresa emergente"),
    "recipe": ("レシピ", "食谱", "菜谱", "레시피", "receta", "recette", "rezept", "receita"),
    "selfie": ("自撮り", "自拍", "셀카", "selfi", "autofoto"),
    "fox": ("狐", "キツネ", "きつね", "狐狸", "여우", "zorro", "renard", "fuchs", "raposa", "volpe"),
    "boat": ("船", "小船", "ボート", "小舟", "보트", "barco", "bote", "bateau", "boot", "barca"),
    "serum": ("美容液", "精华", "精華", "세럼", "에센스", "sérum"),
    "white background": ("白背景", "白い背景", "白色背景", "白底", "흰 배경", "흰색 배경", "fondo blanco",
                         "fond blanc", "weißer hintergrund", "fundo branco"),
    "colored background": ("カラー背景", "彩色背景", "컬러 배경", "fondo de color", "fond coloré"),
    "background": ("背景", "배경", "fondo", "arrière-plan", "hintergrund", "fundo"),
    "character": ("キャラクター", "キャラ", "角色", "人物", "캐릭터", "personaje", "personnage", "figur",
                  "personagem"),
    "three views": ("三面図", "三视图", "三面图", "삼면도"),
    "cityscape": ("街並み", "町並み", "街景", "街道风景", "거리 풍경", "paisaje urbano", "paysage urbain"),
    "landscape painting": ("山水画", "風景画", "风景画", "산수화", "풍경화"),
    "landscape": ("風景", "风景", "景色", "풍경", "paisaje", "landschaft", "paisagem"),
    "chinese": ("中国风", "中國風", "国风", "中華風", "中国", "중국풍", "chino", "chinois"),
    "japanese": ("和風", "日本风", "日式", "일본풍", "japonés", "japonais"),
    "kyoto": ("京都", "교토"),
    "tokyo": ("東京", "东京", "도쿄"),
    "seoul": ("ソウル", "首尔", "서울"),
    "premium": ("高级感", "高級感", "质感", "고급스러운", "premium"),
    "advertising": ("広告風", "广告风", "광고 스타일", "publicitario", "publicitaria", "publicitaire"),
    # seasons and occasions
    "autumn": ("秋", "가을", "otoño", "otoñal", "automne", "automnal", "herbst", "outono", "autunno"),
    "winter": ("冬", "겨울", "invierno", "hiver", "inverno"),
    "spring": ("春", "봄", "primavera", "printemps", "frühling"),
    "summer": ("夏", "여름", "verano", "été", "sommer", "verão", "estate"),
    "christmas": ("クリスマス", "圣诞", "聖誕", "크리스마스", "navidad", "noël", "weihnachten", "natal"),
    "halloween": ("ハロウィン", "万圣节", "할로윈", "halloween"),
    "new year": ("お正月", "新年", "春节", "새해", "설날", "año nuevo", "nouvel an", "neujahr",
                 "ano novo"),
    "valentine's day": ("バレンタイン", "情人节", "발렌타인", "san valentín", "saint-valentin"),
    "cherry blossom": ("桜", "樱花", "벚꽃", "flor de cerezo", "cerisier"),
}

GLOSSARY: dict[str, str] = {}
for _english, _words in _TERMS.items():
    for _w in _words:
        GLOSSARY.setdefault(_w.lower(), _english)

# Words that are not a subject by themselves (articles, fillers, request verbs), per language.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the my our your their his her its this that these those some any me i we you it "
        "make create generate design draw give want need would like please can could prompt "
        "image picture of for with and or to in on at by from about featuring showing "
        "something one style styled look looking kind type version called named text saying "
        "reads reading headline words".split()
    ),
    "es": frozenset(
        "un una unos unas el la los las mi mis mío nuestro nuestra tu su de del para con y o en "
        "por que quiero necesito haz hacer crea crear diseña dame imagen foto estilo algo "
        "sobre al".split()
    ),
    "fr": frozenset(
        "un une des le la les l mon ma mes notre votre son sa de du pour avec et ou en dans "
        "par sur je veux voudrais crée créer fais faire image style quelque chose au aux".split()
    ),
    "de": frozenset(
        "ein eine einen einem der die das den dem des mein meine meinen unser für mit und oder "
        "in im auf von zu ich möchte will brauche erstelle mache bild stil etwas".split()
    ),
    "pt": frozenset(
        "um uma uns umas o a os as meu minha nosso nossa de do da dos das para com e ou em no na "
        "por quero preciso faça crie criar imagem estilo algo sobre".split()
    ),
}
